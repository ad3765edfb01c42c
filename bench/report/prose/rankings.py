"""Rankings in words, shared by every sentence family: names, tiers of ties, who leads.

`ranking` is the sentence "From leanest to heaviest: a (1 MB); b and c, tied (...)", with the
allocators that have no value named after it (`not_ranked`), so none is silently absent;
ties come from bench.report.compare.rank.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from bench.report.compare import Sample, rank
from bench.report.units import join_names, md_safe

__all__ = ["Fmt", "lead_text", "names_text", "not_ranked", "ranking", "ranking_body", "tier_text"]


Fmt = Callable[[float], str]


def names_text(names: list[str] | tuple[str, ...]) -> str:
    return join_names([md_safe(n) for n in names])


def tier_text(tier: tuple[str, ...], items: Mapping[str, Sample], fmt: Fmt) -> str:
    if len(tier) == 1:
        return f"{md_safe(tier[0])} ({fmt(items[tier[0]].center)})"
    vals = join_names([fmt(items[n].center) for n in tier])
    return f"{names_text(tier)}, tied ({vals})"


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
) -> str:
    """'From leanest to heaviest: a (1 MB); b and c, tied (2 MB and 2 MB); d (9 MB).'

    Allocators without a value (`missing`: name and why) are named after the ranking, so
    none is silently absent from it (when nothing at all was measured, saying so is enough).
    """
    body = ranking_body(items, fmt, low_word, high_word, descending)
    return f"{body} {not_ranked(missing)}".strip() if items else body


def ranking_body(
    items: Mapping[str, Sample], fmt: Fmt, low_word: str, high_word: str, descending: bool
) -> str:
    if not items:
        return "Nothing was measured."
    tiers = rank(items, descending=descending)
    if len(items) == 1:
        (name,) = items
        return f"Only {md_safe(name)} was measured ({fmt(items[name].center)})."
    if len(tiers) == 1:
        who = "Both" if len(items) == 2 else f"All {len(items)}"
        return f"{who} tie: {tier_text(tiers[0], items, fmt)}."
    body = "; ".join(tier_text(t, items, fmt) for t in tiers)
    return f"From {low_word} to {high_word}: {body}."


def lead_text(tier: tuple[str, ...], word: str) -> str:
    """'x is the leanest' or 'x and y tie for leanest'."""
    if len(tier) == 1:
        return f"{md_safe(tier[0])} is the {word}"
    return f"{names_text(tier)} tie for {word}"
