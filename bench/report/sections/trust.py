"""Trust: what the run did not measure, its noise, the A/A pair, disturbed and flagged repeats.

Sentences {{ say.not_measured }}, {{ say.not_measured_brief }}, {{ say.noise }}, {{ say.aa }},
{{ say.disturbed }}, {{ say.flags }}; values `tie.*`, `noisy.*`, `repeats.*`, `allocators.*`,
`variants.*`, `disturbed.count`, `flagged.*`, `aa.*`. These see the whole run (`full`): the
noise of the A/A pair is part of it. The evidence that each allocator was loaded is the
provenance section's, the version caveats the allocators section's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bench.measure.runstats import disturbs_memory
from bench.report.aggregate import AllocatorInfo, Results, aa_untied
from bench.report.prose.rankings import names_text, pct_text
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import MIN_FLOOR_REL, NOISY_REL, TIE_REL, t_quantile
from bench.report.units import NOT_MEASURED, fmt_pct, join_names, md_safe

__all__ = [
    "TrustSection",
    "aa",
    "brief_reason",
    "disturbed",
    "flags",
    "noise",
    "not_measured",
    "not_measured_brief",
]


def not_measured(res: Results, variants: Sequence[AllocatorInfo] = ()) -> str:
    """Every allocator without service data, with the reason: failed, skipped, or ran and
    recorded nothing (so none is ever silently dropped from the comparisons).

    `res` is what the rankings compare (stock allocators); the run's `variants` are named too
    when one did not run, pointing to the section that gives its reason."""
    missing = res.not_measured
    empty = [a for a in res.allocators if a.status == "ok" and a.name not in res.service]
    lost = [v.name for v in variants if v.status != "ok"]
    if lost:
        which = "the variant" if len(lost) == 1 else "the variants"
        verb = "was" if len(lost) == 1 else "were"
        variant_note = (
            f"{which.capitalize()} {names_text(lost)} {verb} not measured; "
            "[What the knobs did](#what-the-knobs-did) says why."
        )
    else:
        variant_note = ""
    if not missing and not empty:
        if variants and lost:
            return f"Every stock allocator the spec names was measured. {variant_note}"
        return "Every allocator the spec names was measured."
    items = [
        f"{md_safe(a.name)} ({md_safe(a.status)}: {md_safe(a.reason or 'no reason recorded')}"
        + (f"; to fix: {md_safe(a.fix)}" if a.fix else "")
        + ")"
        for a in missing
    ]
    out = []
    if items:
        out.append(f"Not measured: {'; '.join(items)}.")
    if empty:
        out.append(
            f"{names_text([a.name for a in empty])} ran but the run recorded no service "
            "measurements for " + ("it." if len(empty) == 1 else "them.")
        )
    out.append("The comparisons below name them and leave them out.")
    if variant_note:
        out.append(variant_note)
    return " ".join(out)


def brief_reason(a: AllocatorInfo) -> str:
    """A few words on why an allocator was not measured, for the page's first paragraph
    (the whole reason and its fix are in the allocator table and `not_measured`)."""
    reason = (a.reason or "").strip()
    low = reason.lower()
    if a.status == "skipped" and a.kind == "source":
        if low.startswith("fetching") and any(
            k in low for k in ("resolve host", "unable to access", "network", "connect")
        ):
            return "could not be built here: its source needs the network"
        if low.startswith("fetching"):
            return "could not be built here: its source could not be fetched"
        if "is not installed" in low:
            return "could not be built here: a build tool is missing"
        return "could not be built here: its build failed"
    if a.status == "skipped" and "not found" in low:
        return "is not installed here"
    if a.status == "skipped":
        return "could not be had here"
    if a.status == "ok":
        return "ran but recorded no service measurements"
    first = reason.split(": ")[0].split(". ")[0]
    if len(first) > 80:
        first = first[:77].rstrip() + "..."
    return f"{a.status}: {first}" if first else a.status


def not_measured_brief(res: Results) -> str:
    """'mimalloc-bun was not measured: it could not be built here (see the allocators).'"""
    missing = [a for a in res.allocators if a.name not in res.service]
    if not missing:
        return ""
    items = [f"{md_safe(a.name)} ({md_safe(brief_reason(a))})" for a in missing]
    verb = "was" if len(items) == 1 else "were"
    return (
        f"Not measured: {join_names(items)}; the [allocator table](#the-allocators) "
        f"says why in full."
        if len(items) > 1
        else f"{items[0].split(' (')[0]} {verb} not measured: it "
        f"{md_safe(brief_reason(missing[0]))} (the [allocator table](#the-allocators) "
        "says why in full)."
    )


def noise(res: Results) -> str:
    """The noise rule, stated once: how many repeats, what an interval is, when values tie."""
    n = max((r.settled.n + r.settled.excluded for r in res.service.values()), default=0)
    floor = (
        f"the difference of the A/A pair ({md_safe(res.aa.name)} run twice, below), and "
        f"never under {fmt_pct(MIN_FLOOR_REL)}, since one pair can land close by chance"
        if res.aa
        else f"{fmt_pct(TIE_REL)} of the larger value, a stated threshold"
    )
    if n > 1:
        two = ""
        if n == 2:
            gap = NOISY_REL / (t_quantile(1) / 2)
            two = (
                f" With two repeats Student's t is {t_quantile(1):.1f}, so an interval spans "
                f"about {t_quantile(1) / 2:.1f} times the gap between the two runs either way: "
                f"two runs {pct_text(gap)} apart already make a value too noisy to rank."
            )
        return (
            f"Each allocator ran {n} times. Every value on this page is the mean of its "
            "repeats with a 95% interval (Student's t), written as ±, the half-width of the "
            "interval as a share of the value; two allocators count as tied when their "
            "intervals overlap, and a value whose interval reaches further than "
            f"{fmt_pct(NOISY_REL)} of it either way is called too noisy to rank. A value left "
            "with one clean repeat has no interval and is named apart, never ranked against "
            f"values that have one; where every value has one repeat, the tie threshold is "
            f"{floor}.{two}"
        )
    return (
        "Each allocator ran once, so no value carries an interval, and a single run cannot "
        "tell a real gap from this machine's drift: read every ranking as provisional, or "
        f"raise `repeats` in the spec. Two allocators count as tied when their values differ "
        f"by less than {floor}."
    )


def aa(res: Results) -> str:
    """How far the A/A pair drifted: the run's own noise floor, measure by measure."""
    if res.aa is None:
        return (
            "This run had no A/A pair (the spec's `aa_pair` runs one allocator twice), so "
            "its noise floor was not measured."
        )
    measures = (
        (res.aa.service, "settled", "settled memory"),
        (res.aa.service, "peak", "peak memory"),
        (res.aa.service, "p99", "p99 latency"),
        (res.aa.control, "allocs_per_s", "control throughput"),
    )
    parts = [
        f"{pct_text(d)} in {label}"
        for diffs, key, label in measures
        if (d := diffs.get(key)) is not None
    ]
    head = (
        f"{md_safe(res.aa.name)} ran twice, as {md_safe(res.aa.name)} and "
        f"{md_safe(res.aa.again)}, the same library in the same rounds: an A/A pair."
    )
    if not parts:
        return head + " The pair recorded no measure both runs share."
    drift = (
        f"{head} The two differed by {join_names(parts)}: gaps between different allocators "
        "no larger than that are this machine's drift, not the allocator."
    )
    judged, apart = aa_untied(res)
    if not judged:
        return drift
    if not apart:
        return (
            f"{drift} Under the rule that decides every tie on this page they tied on every "
            f"measure ({join_names(judged)}), as two runs of one allocator should."
        )
    return (
        f"{drift} Yet under the rule that decides every tie on this page they did not tie on "
        f"{join_names(apart)}: two runs of one allocator came out further apart than the rule "
        "allows, so the rankings on this page are provisional."
    )


#: Above this many, disturbed repeats are counted per allocator instead of listed one by one.
_LIST_AT_MOST = 3

_CPU = re.compile(r"other work used (\d+(?:\.\d+)?)% of the machine's CPU")
_LATE = re.compile(r"sent late \(p99 (\d+(?:\.\d+)?) ms")


def _worst(reasons: list[str]) -> str:
    """The disturbances in brief, worst case of each kind: 'other work used up to 85% of the
    CPU; the load generator sent up to 315 ms late'; other reasons verbatim, once each."""
    cpu = [float(m.group(1)) for r in reasons for m in _CPU.finditer(r)]
    late = [float(m.group(1)) for r in reasons for m in _LATE.finditer(r)]
    parts = []
    if cpu:
        parts.append(f"other work used up to {max(cpu):.0f}% of the machine's CPU")
    if late:
        parts.append(f"the load generator's p99 send delay reached {max(late):.0f} ms")
    rest = [
        t.strip()
        for r in reasons
        for t in r.split("; ")
        if t.strip() and not _CPU.search(t) and not _LATE.search(t)
    ]
    return "; ".join(parts + [md_safe(t) for t in dict.fromkeys(rest)])


def disturbed(res: Results) -> str:
    """Which repeats the machine disturbed and what was done with them: listed when few,
    counted per allocator with the worst disturbance when many."""
    if not res.disturbed:
        return "The runner flagged no repeat as disturbed by other work on the machine."
    n = len(res.disturbed)
    timing = all(d.experiment == "service" and not disturbs_memory(d.reason) for d in res.disturbed)
    tail = (
        "They are left out of the latency and throughput figures"
        + (
            ", and kept in the memory figures: a late send or a busy CPU moves timings, not "
            "the memory sampled on its own schedule"
            if timing
            else " and, where the disturbance touched the memory samples, of the memory figures too"
        )
        + " (kept only where an allocator has no other repeat); the full data table marks "
        "each, and a quieter machine (nothing else running, fewer background services) gives "
        "cleaner ones."
    )
    if n <= _LIST_AT_MOST:
        items = [
            f"{md_safe(d.allocator)} ({d.experiment}, repeat {d.repeat}: {md_safe(d.reason)})"
            for d in res.disturbed
        ]
        which = f"{n} repeat{'s' if n != 1 else ''}"
        return f"The runner flagged {which} as disturbed: {'; '.join(items)}. {tail}"
    per: dict[str, int] = {}
    for d in res.disturbed:
        per[d.allocator] = per.get(d.allocator, 0) + 1
    counts = join_names([f"{md_safe(a)} {k}" for a, k in per.items()])
    return (
        f"The runner flagged {n} repeats as disturbed ({counts}): "
        f"{_worst([d.reason for d in res.disturbed])}. {tail}"
    )


def flags(res: Results) -> str:
    """Which allocators' numbers the method checks flagged, and why (from the summary)."""
    if not res.flagged:
        return (
            "No repeat was flagged by the method checks (failed requests, holes in the memory "
            "samples of the peak or settle window, a call of the runner inside the settle "
            "window, a control that rested less than the service or ran more threads than "
            "CPUs)."
        )
    per: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for f in res.flagged:
        per.setdefault((f.allocator, f.experiment), []).append((f.repeat, f.flags))
    # allocators flagged alike (same experiment, repeats and reasons) share one sentence
    alike: dict[tuple[str, tuple[int, ...], tuple[str, ...]], list[str]] = {}
    for (name, experiment), items in per.items():
        reps = tuple(sorted({r for r, _ in items}))
        texts = tuple(dict.fromkeys(t for _, text in items for t in text.split("; ") if t))
        alike.setdefault((experiment, reps, texts), []).append(name)
    out = []
    for (experiment, reps, texts), names in alike.items():
        which = (
            f"repeat {reps[0]}"
            if len(reps) == 1
            else "repeats " + join_names([str(r) for r in reps])
        )
        whose = (
            f"{md_safe(names[0])}'s {md_safe(experiment)} numbers are"
            if len(names) == 1
            else f"The {md_safe(experiment)} numbers of {names_text(names)} are"
        )
        out.append(f"{whose} flagged ({which}): {md_safe('; '.join(texts))}.")
    if any(f.experiment == "service" for f in res.flagged):
        out.append(
            "Flagged service repeats are left out of the means and intervals (kept when an "
            "allocator has no other) and are marked in the full data table."
        )
    if any(f.experiment == "control" for f in res.flagged):
        out.append(
            "The control's flags describe how every repeat of it ran, not a disturbance of "
            "one, so its flagged repeats stay in."
        )
    return " ".join(out)


@dataclass(frozen=True)
class Trust:
    full: Results
    res: Results


class TrustSection(Section[Trust]):
    name = "trust"
    title = "The machine"

    def compute(self, loaded: Loaded) -> Trust:
        return Trust(loaded.full, loaded.res)

    def values(self, data: Trust) -> dict[str, str]:
        return _noise_values(data.full)

    def sentences(self, data: Trust) -> Entries:
        full, res = data.full, data.res
        return {
            "flags": lambda: flags(full),
            "not_measured": lambda: not_measured(res, full.variants),
            "not_measured_brief": lambda: not_measured_brief(res),
            "noise": lambda: noise(full),
            "aa": lambda: aa(full),
            "disturbed": lambda: disturbed(full),
        }


def _noise_values(res: Results) -> dict[str, str]:
    """The noise rule and the A/A floor as named values (`res` is the whole run)."""
    with_repeats = any(r.settled.n > 1 for r in res.service.values()) or any(
        c.allocs_per_s is not None and c.allocs_per_s.n > 1 for c in res.control.values()
    )
    floor = (
        f"the A/A pair's difference ({res.aa.name} run twice)"
        if res.aa
        else f"{fmt_pct(TIE_REL)} of the larger value (a single repeat measures no noise)"
    )
    out = {
        "tie.threshold": fmt_pct(TIE_REL),
        "noisy.threshold": fmt_pct(NOISY_REL),
        "tie.rule": "overlapping 95% intervals of their repeats" if with_repeats else floor,
        "repeats.service": str(
            max((r.settled.n + r.settled.excluded for r in res.service.values()), default=0)
        ),
        "repeats.control": str(
            max((c.allocs_per_s.n for c in res.control.values() if c.allocs_per_s), default=0)
        ),
        "allocators.count": str(len(res.ranked().allocators)),
        "allocators.measured": str(len(res.ranked().service)),
        "allocators.names": join_names(list(res.ranked().names)),
        # variants (a stock allocator with a setting changed) are counted apart: the rankings
        # and the counts above leave them out
        "variants.count": str(len(res.variants)),
        "variants.measured": str(sum(1 for v in res.variants if v.name in res.service)),
        "variants.names": join_names([v.name for v in res.variants]) or "none",
        "disturbed.count": str(len(res.disturbed)),
        "flagged.count": str(len(res.flagged)),
        "flagged.allocators": join_names(list(dict.fromkeys(f.allocator for f in res.flagged)))
        or "none",
        "aa.name": res.aa.name if res.aa else NOT_MEASURED,
        "aa.again": res.aa.again if res.aa else NOT_MEASURED,
    }
    for key in ("settled", "peak", "p99"):
        d = res.aa.service.get(key) if res.aa else None
        out[f"aa.{key}.pct"] = pct_text(d) if d is not None else NOT_MEASURED
    d = res.aa.control.get("allocs_per_s") if res.aa else None
    out["aa.control.pct"] = pct_text(d) if d is not None else NOT_MEASURED
    return out
