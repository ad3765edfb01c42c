"""Sentences whose comparative words are computed from the results.

Each function returns one or a few sentences of Markdown-safe text. Ranking words come from
stats.rank (so ties are called ties), "barely moved" from stats.latency_verdict, keep-or-return
from stats.classify_fingerprint; no function assumes which allocator wins or how many ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from bench.report import series as ser
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.provenance import evidence_state
from bench.report.run import Run
from bench.report.stats import (
    FINGERPRINT_KEEP_BELOW,
    FINGERPRINT_RETURN_FROM,
    TIE_REL,
    Sample,
    classify_fingerprint,
    extremes_ratio,
    latency_verdict,
    rank,
    shed_fraction,
)
from bench.report.units import (
    fmt_count,
    fmt_mb,
    fmt_mops,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    join_names,
    md_safe,
)

__all__ = ["sentences"]

Fmt = Callable[[float], str]


def _names(names: list[str] | tuple[str, ...]) -> str:
    return join_names([md_safe(n) for n in names])


def _tier_text(tier: tuple[str, ...], items: Mapping[str, Sample], fmt: Fmt) -> str:
    if len(tier) == 1:
        return f"{md_safe(tier[0])} ({fmt(items[tier[0]].center)})"
    vals = join_names([fmt(items[n].center) for n in tier])
    return f"{_names(tier)}, tied ({vals})"


def ranking(
    items: Mapping[str, Sample],
    fmt: Fmt,
    low_word: str,
    high_word: str,
    *,
    descending: bool = False,
) -> str:
    """'From leanest to heaviest: a (1 MB); b and c, tied (2 MB and 2 MB); d (9 MB).'"""
    if not items:
        return "Nothing was measured."
    tiers = rank(items, descending=descending)
    if len(items) == 1:
        (name,) = items
        return f"Only {md_safe(name)} was measured ({fmt(items[name].center)})."
    if len(tiers) == 1:
        who = "Both" if len(items) == 2 else f"All {len(items)}"
        return f"{who} tie: {_tier_text(tiers[0], items, fmt)}."
    body = "; ".join(_tier_text(t, items, fmt) for t in tiers)
    return f"From {low_word} to {high_word}: {body}."


def _lead(tier: tuple[str, ...], word: str) -> str:
    """'x is the leanest' or 'x and y tie for leanest'."""
    if len(tier) == 1:
        return f"{md_safe(tier[0])} is the {word}"
    return f"{_names(tier)} tie for {word}"


def headline(res: Results) -> str:
    settled = {n: r.settled for n, r in res.service.items()}
    if not settled:
        return "No allocator produced service measurements in this run."
    if len(settled) == 1:
        (n,) = settled
        r = res.service[n]
        return (
            f"Only {md_safe(n)} was measured: it peaked at {fmt_mb(r.peak.center)} and "
            f"settled at {fmt_mb(r.settled.center)}."
        )
    tiers = rank(settled)
    if len(tiers) == 1:
        return (
            f"{'Both' if len(settled) == 2 else f'All {len(settled)}'} allocators settled "
            "within the noise of each other, "
            f"between {fmt_mb(min(s.center for s in settled.values()))} and "
            f"{fmt_mb(max(s.center for s in settled.values()))}."
        )
    lo, hi = tiers[0], tiers[-1]
    ratio = settled[hi[0]].center / settled[lo[0]].center if settled[lo[0]].center else math.nan
    return (
        f"Once the service had rested, {_lead(lo, 'leanest')} at "
        f"{fmt_mb(settled[lo[0]].center)} of anonymous memory, and "
        f"{_lead(hi, 'heaviest')} at {fmt_mb(settled[hi[0]].center)}: "
        f"{fmt_ratio(ratio)} as much for the same work."
    )


def peak_vs_settled(res: Results) -> str:
    settled = {n: r.settled for n, r in res.service.items()}
    peak = {n: r.peak for n, r in res.service.items()}
    if len(settled) < 2:
        return "With fewer than two allocators measured there is nothing to compare."
    best_s, best_p = rank(settled)[0], rank(peak)[0]
    both = [n for n in best_s if n in best_p]
    if both:
        return (
            f"{_names(both)} {'is' if len(both) == 1 else 'are'} among the leanest both at "
            f"the busiest moment and once settled."
        )
    return (
        f"The leanest at the busiest moment ({_names(best_p)}, "
        f"{fmt_mb(peak[best_p[0]].center)}) is not the leanest once settled "
        f"({_names(best_s)}, {fmt_mb(settled[best_s[0]].center)}): the better choice "
        "depends on which of the two numbers limits you."
    )


def fingerprints(res: Results, idle: str) -> str:
    if not res.service:
        return "No allocator produced service measurements, so there is no fingerprint."
    groups: dict[str, list[str]] = {"keeps": [], "returns some": [], "returns most": []}
    for n, r in res.service.items():
        groups[classify_fingerprint(r.peak.center, r.settled.center)].append(n)
    keep, most = fmt_pct(FINGERPRINT_KEEP_BELOW), fmt_pct(FINGERPRINT_RETURN_FROM)
    labels = {
        "keeps": f"Kept what they reached (less than {keep} of the peak given back in {idle} "
        "of rest)",
        "returns some": f"Gave back part of the peak (between {keep} and {most})",
        "returns most": f"Gave back most of the peak ({most} or more)",
    }
    return " ".join(f"{labels[k]}: {_names(v)}." for k, v in groups.items() if v)


def reclaim(run: Run, res: Results) -> str:
    freed = {
        n: r.settled.center - r.reclaimed.center
        for n, r in res.service.items()
        if r.reclaimed is not None
    }
    if not freed:
        return "The run recorded no memory after the forced reclaim."
    top = max(freed, key=lambda n: (freed[n], n))
    swap = (run.manifest.get("confounds") or {}).get("swap_bytes")
    why = (
        " With swap off, dirty anonymous pages have nowhere to go, so this is expected."
        if swap == 0
        else ""
    )
    if freed[top] <= 0:
        return f"The forced reclaim at the end returned nothing for any allocator.{why}"
    return (
        f"The forced reclaim at the end returned at most {fmt_mb(freed[top])} "
        f"({md_safe(top)}), against settled values of "
        f"{fmt_mb(min(r.settled.center for r in res.service.values()))} and up.{why}"
    )


def latency(res: Results) -> str:
    items = {n: r.p99 for n, r in res.service.items() if r.p99}
    v = latency_verdict(items)
    if v is None:
        return "Latency needs at least two measured allocators to compare."
    span = (
        f"p99 ranged from {fmt_ms(v.low_ms)} ({md_safe(v.lowest)}) to "
        f"{fmt_ms(v.high_ms)} ({md_safe(v.highest)})"
    )
    if not v.moved:
        return (
            f"Allocator choice barely moved tail latency: {span}, a gap no larger than "
            f"the {fmt_ms(v.band_ms)} we treat as noise."
        )
    return (
        f"Allocator choice moved tail latency: {span}, {fmt_ratio(v.ratio)} the lowest "
        f"and beyond the {fmt_ms(v.band_ms)} we treat as noise."
    )


def latency_median(res: Results) -> str:
    items = {n: r.p50 for n, r in res.service.items() if r.p50}
    v = latency_verdict(items)
    if v is None:
        return ""
    word = "moved" if v.moved else "barely moved"
    return (
        f"At the median the allocators {word}: p50 ran from {fmt_ms(v.low_ms)} to "
        f"{fmt_ms(v.high_ms)}."
    )


def load_held(run: Run, res: Results) -> str:
    rate = float(specview.get(run.spec, "service.rate"))
    rps = [r.rps.center for r in res.service.values() if r.rps]
    total = sum(r.requests for r in res.service.values())
    errors = sum(r.errors for r in res.service.values())
    parts = []
    if rps:
        lo, hi = min(rps), max(rps)
        held = "held" if lo >= 0.98 * rate else "fell short of"
        parts.append(
            f"The load generator {held} the scheduled {rate:g} requests/s "
            f"(achieved {lo:,.1f} to {hi:,.1f})"
        )
    if total:
        parts.append(
            "every one of the " + fmt_count(total) + " requests succeeded"
            if not errors
            else f"{fmt_count(errors)} of {fmt_count(total)} requests failed"
        )
    return ("; ".join(parts) + ".") if parts else "The run recorded no request counts."


def control_throughput(res: Results) -> str:
    speed = {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}
    if not speed:
        return "The C++ control was not run or recorded no throughput."
    if len(speed) == 1:
        (n,) = speed
        return f"Only {md_safe(n)} ran in the C++ control, at {fmt_mops(speed[n].center)}."
    tiers = rank(speed, descending=True)
    if len(tiers) == 1:
        return (
            f"In the C++ control {'both' if len(speed) == 2 else f'all {len(speed)}'} "
            "allocators tie on throughput, within the "
            "noise of their repeats."
        )
    fast, slow = tiers[0], tiers[-1]
    ratio = speed[fast[0]].center / speed[slow[0]].center
    return (
        f"In the C++ control, {_lead(fast, 'fastest')} at {fmt_mops(speed[fast[0]].center)} "
        f"and {_lead(slow, 'slowest')} at {fmt_mops(speed[slow[0]].center)}, "
        f"{fmt_ratio(ratio)} apart."
    )


def spread_compare(res: Results) -> str:
    svc = extremes_ratio({n: r.settled for n, r in res.service.items()})
    ctl = extremes_ratio({n: c.settled for n, c in res.control.items() if c.settled})
    if svc is None or ctl is None or len(res.service) < 2 or len(res.control) < 2:
        return "Comparing the spread needs at least two allocators in both experiments."
    head = (
        f"Settled memory spans {fmt_ratio(svc)} from leanest to heaviest in the Python "
        f"service and {fmt_ratio(ctl)} in the C++ control"
    )
    if abs(math.log(svc / ctl)) <= math.log1p(TIE_REL):
        return head + ": about the same, so the runtime adds little divergence of its own."
    if svc > ctl:
        return (
            head + ": the allocators differ more under the Python runtime and its mixed "
            "workload than on the bare churn alone."
        )
    return (
        head + ": the allocators differ more on the bare churn than under the Python "
        "runtime, which evens them out."
    )


def guidance(res: Results) -> str:
    settled = {n: r.settled for n, r in res.service.items()}
    peak = {n: r.peak for n, r in res.service.items()}
    if len(settled) < 2:
        return "Guidance needs at least two measured allocators."
    best_p, best_s = rank(peak)[0], rank(settled)[0]
    out = [
        f"If a container memory limit is what you size for, the peak is the number that "
        f"matters, and here the lowest peak belongs to {_names(best_p)} "
        f"({fmt_mb(peak[best_p[0]].center)}).",
        f"If you pay for memory that sits idle, or pack many services onto one machine, "
        f"settled memory matters, and {_names(best_s)} settled lowest "
        f"({fmt_mb(settled[best_s[0]].center)}).",
    ]
    both = [n for n in best_p if n in best_s]
    out.append(
        f"{_names(both)} {'wins' if len(both) == 1 else 'win'} on both counts in this run."
        if both
        else "No allocator wins on both counts in this run."
    )
    return " ".join(out)


def guidance_costs(res: Results) -> str:
    p99 = {n: r.p99 for n, r in res.service.items() if r.p99}
    v = latency_verdict(p99)
    speed = {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}
    parts = []
    if v is not None:
        parts.append(
            "Request latency barely moved between allocators, so on this workload the "
            "memory choice costs no measurable latency."
            if not v.moved
            else f"Check latency before switching: p99 moved, and {md_safe(v.highest)} "
            f"had the highest ({fmt_ms(v.high_ms)})."
        )
    if len(speed) >= 2:
        fast = rank(speed, descending=True)[0]
        parts.append(
            f"Where raw allocation speed matters more than memory, the bare C++ "
            f"control favours {_names(fast)}."
        )
    return " ".join(parts)


def not_measured(res: Results) -> str:
    missing = res.not_measured
    if not missing:
        return "Every allocator the spec names was measured."
    items = [
        f"{md_safe(a.name)} ({md_safe(a.status)}: {md_safe(a.reason or 'no reason recorded')}"
        + (f"; to fix: {md_safe(a.fix)}" if a.fix else "")
        + ")"
        for a in missing
    ]
    return f"Not measured: {'; '.join(items)}. The comparisons below leave them out."


def noise(res: Results) -> str:
    n = max((r.settled.n for r in res.service.values()), default=0)
    if n > 1:
        return (
            f"Each allocator ran {n} times; two allocators count as tied when their "
            "values differ by less than the larger max–min spread of their repeats."
        )
    return (
        f"Each allocator ran once, so the run measures no noise of its own; two "
        f"allocators count as tied when their values differ by less than "
        f"{fmt_pct(TIE_REL)} of the larger one."
    )


def disturbed(res: Results) -> str:
    if not res.disturbed:
        return "The runner flagged no repeat as disturbed by other work on the machine."
    items = [
        f"{md_safe(d.allocator)} ({d.experiment}, repeat {d.repeat}: {md_safe(d.reason)})"
        for d in res.disturbed
    ]
    return (
        f"The runner flagged {len(items)} repeat{'s' if len(items) != 1 else ''} as "
        f"disturbed: {'; '.join(items)}. Treat their numbers with care; a quieter machine "
        "(nothing else running, fewer background services) gives cleaner ones."
    )


def staircase(run: Run, res: Results) -> str:
    names = [n for n in res.names if n in res.service]
    lines = ser.first_repeat_series(run.memory, "service", names)
    spans = {s.phase: s for s in ser.phase_spans(run.memory, "service")}
    load = spans.get("load")
    if not lines or load is None:
        return "The run recorded no memory samples for the load phase."
    window = max(float(specview.get(run.spec, "service.sample_interval_s")) * 5, 1.0)
    climbs = {}
    for n, pts in lines.items():
        a = ser.value_at(pts, load.start_s, load.start_s + window)
        b = ser.value_at(pts, load.end_s - window, load.end_s)
        if a is not None and b is not None:
            climbs[n] = (a, b)
    if not climbs:
        return "The run recorded no memory samples for the load phase."
    rising = [n for n, (a, b) in climbs.items() if b > a * (1 + TIE_REL)]
    top = max(climbs, key=lambda n: (climbs[n][1] - climbs[n][0], n))
    a, b = climbs[top]
    load_s = fmt_seconds(float(specview.get(run.spec, "service.load_s")))
    first = (
        f"Over the {load_s} of load, "
        f"{len(rising)} of {len(climbs)} allocators kept climbing after the first "
        "seconds"
        if rising
        else f"Over the {load_s} of load no allocator kept climbing after the first seconds"
    )
    return f"{first}; the largest climb was {md_safe(top)}'s, from {fmt_mb(a)} to {fmt_mb(b)}."


def evidence(res: Results) -> str:
    checks, bad = 0, []
    for a in res.allocators:
        if a.status != "ok":
            continue
        states = [evidence_state(e, a.expected_library) for v in a.evidence.values() for e in v]
        checks += len(states)
        wrong, unchecked = states.count("contradicted"), states.count("unchecked")
        if not states:
            bad.append(f"{md_safe(a.name)} (no evidence recorded)")
        elif wrong:
            bad.append(
                f"{md_safe(a.name)} ({wrong} of {len(states)} processes served by another library)"
            )
        elif unchecked:
            bad.append(
                f"{md_safe(a.name)} ({unchecked} of {len(states)} processes could not be checked)"
            )
    if not bad:
        return (
            f"Every measured allocator was found serving malloc in every process checked "
            f"({checks} checks)."
        )
    return f"Evidence of loading is missing or negative for: {'; '.join(bad)}."


def sentences(run: Run, res: Results) -> dict[str, Callable[[], str]]:
    """Every sentence a page can quote as {{ say.<name> }}, computed when first used."""
    idle = fmt_seconds(float(specview.get(run.spec, "service.idle_s")))
    svc: dict[str, Any] = res.service
    settled = {n: r.settled for n, r in svc.items()}
    peak = {n: r.peak for n, r in svc.items()}
    shed = {
        n: Sample((f,), f, 0.0)
        for n, r in svc.items()
        if (f := shed_fraction(r.peak.center, r.settled.center)) is not None
    }
    speed = {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}
    return {
        "headline": lambda: headline(res),
        "settled_ranking": lambda: ranking(settled, fmt_mb, "leanest", "heaviest"),
        "peak_ranking": lambda: ranking(peak, fmt_mb, "leanest", "heaviest"),
        "shed_ranking": lambda: ranking(
            shed, fmt_pct, "gave back most", "gave back least", descending=True
        ),
        "peak_vs_settled": lambda: peak_vs_settled(res),
        "fingerprints": lambda: fingerprints(res, idle),
        "reclaim": lambda: reclaim(run, res),
        "staircase": lambda: staircase(run, res),
        "latency": lambda: latency(res),
        "latency_median": lambda: latency_median(res),
        "load": lambda: load_held(run, res),
        "control_throughput": lambda: control_throughput(res),
        "control_ranking": lambda: ranking(speed, fmt_mops, "fastest", "slowest", descending=True),
        "spread_compare": lambda: spread_compare(res),
        "guidance": lambda: guidance(res),
        "guidance_costs": lambda: guidance_costs(res),
        "not_measured": lambda: not_measured(res),
        "noise": lambda: noise(res),
        "disturbed": lambda: disturbed(res),
        "evidence": lambda: evidence(res),
    }
