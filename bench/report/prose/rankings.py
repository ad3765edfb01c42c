"""Rankings in words, shared by every sentence family: names, tiers of ties, who leads.

`ranking` is the sentence "From leanest to heaviest: a (1 MB ±1%); b (2 MB) and c (2.1 MB),
tied; d (9 MB)", each value with the half-width of its 95% interval when the run had repeats,
then the measurements too noisy to rank (`noisy_text`), the allocators that have no value
(`not_ranked`), so none is silently absent, and the A/A pair's difference on this measure
(`aa_text`), the floor a reader can hold every gap against. Ties and noise come from
bench.report.stats.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.report.stats import Sample, falling, lone, noisy, rank
from bench.report.units import NOT_MEASURED, join_names, md_safe

__all__ = [
    "Fmt",
    "aa_text",
    "busy_text",
    "extreme_values",
    "median_center",
    "value_band",
    "falling_text",
    "lead_text",
    "named_value",
    "names_text",
    "noisy_text",
    "pct_text",
    "not_ranked",
    "ranking",
    "ranking_body",
    "shown_interval",
    "tier_text",
    "value_text",
]


Fmt = Callable[[float], str]


def names_text(names: list[str] | tuple[str, ...]) -> str:
    return join_names([md_safe(n) for n in names])


def pct_text(fraction: float) -> str:
    """A small share with the precision it needs: 'under 0.1%', '0.4%', '3.0%', '12%'."""
    pct = fraction * 100
    if pct < 0.05:
        return "under 0.1%"
    return f"{pct:.1f}%" if pct < 9.95 else f"{pct:.0f}%"


def shown_interval(s: Sample) -> tuple[float, float] | None:
    """The 95% interval as printed: never below zero for a measure that cannot be negative
    (Student's t assumes a symmetric spread that a latency or a size does not have)."""
    iv = s.interval
    if iv is None:
        return None
    return (max(iv[0], 0.0), iv[1]) if min(s.values) >= 0 else iv


def value_text(s: Sample, fmt: Fmt, *, share: bool = False) -> str:
    """'888 MB ±0.4%' with repeats (the half-width of the 95% interval), '888 MB' without.

    A share near zero (`share`) shows its interval as a range, '1%, between 0% and 6%':
    relative to a value near zero, a half-width in percent says nothing.
    """
    if share:
        iv = s.interval
        if iv is None:
            return fmt(s.center)
        return f"{fmt(s.center)}, between {fmt(iv[0])} and {fmt(iv[1])}"
    rel = s.half_width_rel
    return fmt(s.center) if rel is None else f"{fmt(s.center)} ±{pct_text(rel)}"


def named_value(name: str, items: Mapping[str, Sample], fmt: Fmt, *, share: bool = False) -> str:
    return f"{md_safe(name)} ({value_text(items[name], fmt, share=share)})"


def tier_text(
    tier: tuple[str, ...], items: Mapping[str, Sample], fmt: Fmt, *, share: bool = False
) -> str:
    """One allocator with its value, or a tie naming each tied value."""
    if len(tier) == 1:
        return named_value(tier[0], items, fmt, share=share)
    return f"{join_names([named_value(n, items, fmt, share=share) for n in tier])}, tied"


def noisy_text(items: Mapping[str, Sample], fmt: Fmt) -> str:
    """'Too noisy to rank: x (4.86 million/s, 95% interval 2.83–6.89).', then the settled
    values still falling when idle ended, which no ranking places ('' when neither)."""
    names = [n for n in noisy(items) if items[n].placeable]
    out = []
    if names:
        parts = []
        for n in names:
            lo, hi = shown_interval(items[n]) or (items[n].low, items[n].high)
            parts.append(
                f"{md_safe(n)} ({fmt(items[n].center)}, 95% interval {fmt(lo)} to {fmt(hi)})"
            )
        whose = "its" if len(parts) == 1 else "their"
        out.append(f"Too noisy to rank, {whose} repeats disagreeing: {join_names(parts)}.")
    if still := [n for n in falling(items) if not items[n].saturated]:
        out.append(falling_text(still, items, fmt))
    if queued := [n for n in items if items[n].saturated]:
        verb = "was" if len(queued) == 1 else "were"
        out.append(
            f"Not ranked: {names_text(queued)}, whose every repeat {verb} measured while the "
            "app could not keep up with the asked rate (a queue, not the load)."
        )
    if single := [n for n in lone(items) if items[n].placeable]:
        parts = [named_value(n, items, fmt) for n in single]
        verb = "has" if len(parts) == 1 else "have"
        out.append(
            f"Not ranked: {join_names(parts)} {verb} a single clean repeat left, and one repeat "
            "cannot be placed against values that have an interval."
        )
    return " ".join(out)


def falling_text(names: Sequence[str], items: Mapping[str, Sample], fmt: Fmt) -> str:
    """'Not ranked as settled: x was still returning memory when idle ended after 7 s (at
    385 MB).' One clause per allocator."""
    parts = [
        f"{md_safe(n)} was still returning memory when idle ended after "
        f"{items[n].falling_after_s:.0f} s (at {fmt(items[n].center)})"
        for n in names
    ]
    return f"Not ranked as settled: {join_names(parts)}."


def aa_text(items: Mapping[str, Sample], aa_name: str | None) -> str:
    """'The A/A pair (glibc run twice) differed by 0.4% on this measure.' ('' without one)."""
    floors = [s.floor_rel for s in items.values() if s.floor_rel is not None]
    if not aa_name or not floors:
        return ""
    return (
        f"The A/A pair ({md_safe(aa_name)} run twice) differed by {pct_text(max(floors))} "
        "on this measure."
    )


def not_ranked(missing: Sequence[tuple[str, str]]) -> str:
    """'Not ranked: a (failed: why) and b (skipped: why).' ('' when every allocator is in)."""
    if not missing:
        return ""
    return (
        "Not ranked: " + join_names([f"{md_safe(n)} ({md_safe(why)})" for n, why in missing]) + "."
    )


def ranking(
    items: Mapping[str, Sample],
    fmt: Fmt,
    low_word: str,
    high_word: str,
    *,
    descending: bool = False,
    missing: Sequence[tuple[str, str]] = (),
    aa_name: str | None = None,
    share: bool = False,
) -> str:
    """'From leanest to heaviest: a (1 MB); b (2 MB) and c (2 MB), tied; d (9 MB).'

    Allocators without a value (`missing`: name and why) are named after the ranking, so
    none is silently absent from it (when nothing at all was measured, saying so is enough),
    and the A/A pair's difference closes it when the run had one. `share` marks values that
    are shares near zero: no relative noise judgement, intervals printed as ranges.
    """
    body = ranking_body(items, fmt, low_word, high_word, descending, share)
    if not items:
        return body
    return " ".join(t for t in (body, not_ranked(missing), aa_text(items, aa_name)) if t)


def ranking_body(
    items: Mapping[str, Sample],
    fmt: Fmt,
    low_word: str,
    high_word: str,
    descending: bool,
    share: bool = False,
) -> str:
    """The ranking itself, then the measurements too noisy to place in it."""
    if not items:
        return "Nothing was measured."
    if len(items) == 1:
        (name,) = items
        return f"Only {named_value(name, items, fmt, share=share)} was measured."
    tiers = rank(items, descending=descending, judge_noise=not share)
    ranked = sum(len(t) for t in tiers)
    if not tiers:
        head = ""
    elif len(tiers) == 1 and ranked == 1:
        head = f"Only {tier_text(tiers[0], items, fmt, share=share)} could be placed."
    elif len(tiers) == 1:
        who = "Both" if ranked == 2 else f"All {ranked}"
        tied = join_names([named_value(n, items, fmt, share=share) for n in tiers[0]])
        head = f"{who} tie: {tied}."
    else:
        body = "; ".join(tier_text(t, items, fmt, share=share) for t in tiers)
        head = f"From {low_word} to {high_word}: {body}."
    shaky = "" if share else noisy_text(items, fmt)
    return " ".join(t for t in (head, shaky, busy_text(items)) if t)


def busy_text(items: Mapping[str, Sample]) -> str:
    """'Every repeat of a and b ran while the machine was busy: ...' ('' when none did)."""
    busy = [n for n in items if items[n].busy]
    if not busy:
        return ""
    whose = "its place" if len(busy) == 1 else "their places"
    return (
        f"Every repeat of {names_text(busy)} ran while the machine was busy, none clean, so "
        f"{whose} in this ranking {'is' if len(busy) == 1 else 'are'} provisional."
    )


def lead_text(tier: tuple[str, ...], word: str, items: Mapping[str, Sample], fmt: Fmt) -> str:
    """'x is the leanest at 5 MB' or 'x (5 MB) and y (5.1 MB) tie for leanest': a tie names
    each tied value, never the leader's alone."""
    if len(tier) == 1:
        return f"{md_safe(tier[0])} is the {word} at {value_text(items[tier[0]], fmt)}"
    return f"{join_names([named_value(n, items, fmt) for n in tier])} tie for {word}"


def extreme_values(
    items: Mapping[str, Sample],
    prefix: str,
    fmt: Any,
    *,
    best_low: bool,
    best: str,
    worst: str,
    unit_key: str,
) -> dict[str, str]:
    """`<best>.name`/`.<unit>` and `<worst>.…` for one ranked measure (tiers joined)."""
    out: dict[str, str] = {}
    keys = (f"{prefix}{best}", f"{prefix}{worst}")
    if not items:
        for k in keys:
            out[f"{k}.name"] = out[f"{k}.{unit_key}"] = NOT_MEASURED
        return out
    tiers = rank(items, descending=not best_low)
    if not tiers:
        for k in keys:
            out[f"{k}.name"] = out[f"{k}.{unit_key}"] = "too noisy to rank"
        return out
    for key, tier in zip(keys, (tiers[0], tiers[-1]), strict=True):
        out[f"{key}.name"] = join_names(list(tier))
        out[f"{key}.{unit_key}"] = fmt(items[tier[0]].center)
    return out


def value_band(items: Mapping[str, Sample], fmt: Any) -> str:
    if not items:
        return NOT_MEASURED
    lo = min(s.center for s in items.values())
    hi = max(s.center for s in items.values())
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo).split(' ')[0]}–{fmt(hi)}"


def median_center(samples: Sequence[Sample | None]) -> float | None:
    """The median across allocators of their centres (the run's one live payload)."""
    centers = [s.center for s in samples if s is not None]
    return statistics.median(centers) if centers else None
