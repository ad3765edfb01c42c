"""Sentences about memory: who is leanest, peak against settled, the keep-or-return
fingerprints, the overhead per byte held, the staircase and the live payload.
"""

from __future__ import annotations

import math
import statistics

from bench.report import series as ser
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.live import FILL_SHARE, LivePayload
from bench.report.prose.rankings import (
    lead_text,
    named_value,
    names_text,
    noisy_text,
    not_ranked,
    value_text,
)
from bench.report.recorded_method import Method
from bench.report.runfolders import Run
from bench.report.stats import (
    FINGERPRINT_KEEP_BELOW,
    FINGERPRINT_RETURN_FROM,
    TIE_REL,
    Sample,
    classify_fingerprint,
    rank,
)
from bench.report.units import (
    fmt_duration,
    fmt_mb,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    join_names,
    md_safe,
)

__all__ = [
    "fingerprints",
    "headline",
    "leanest_tiers",
    "live_sentence",
    "overhead",
    "peak_vs_settled",
    "staircase",
]


def headline(res: Results) -> str:
    """The lead: who is leanest and heaviest once rested, after what made the run's service
    unfit to compare (saturation) where that happened."""
    lead = _headline(res)
    queued = {n: r.saturated for n, r in res.service.items() if r.saturated}
    if not queued:
        return lead
    first = next(iter(queued.values())) or "saturated"
    served = first.removeprefix("saturated: ")
    return (
        f"**The app could not keep up** under {names_text(list(queued))}: {served}. Memory "
        "measured that way is a queue's, not the load's, so those allocators are not ranked; "
        "lower `service.rate` (or give the app more workers) and run again. " + lead
    )


def _headline(res: Results) -> str:
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
    shaky = noisy_text(settled, fmt_mb)
    if not tiers and any(s.saturated or s.falling_after_s is not None for s in settled.values()):
        return shaky  # it names why each one is not ranked
    if not tiers:
        return f"Settled memory varied too much between repeats to rank any allocator. {shaky}"
    if len(tiers) == 1:
        tied = tiers[0]
        head = (
            f"{'Both' if len(tied) == 2 else f'All {len(tied)}'} allocators settled "
            "within the noise of each other, "
            f"between {fmt_mb(min(settled[n].center for n in tied))} and "
            f"{fmt_mb(max(settled[n].center for n in tied))}."
        )
        return " ".join(t for t in (head, shaky) if t)
    lo, hi = tiers[0], tiers[-1]
    ratio = settled[hi[0]].center / settled[lo[0]].center if settled[lo[0]].center else math.nan
    head = (
        f"Once the service had rested, {lead_text(lo, 'leanest', settled, fmt_mb)} of "
        f"anonymous memory, and {lead_text(hi, 'heaviest', settled, fmt_mb)}: "
        f"{fmt_ratio(ratio)} as much for the same work."
    )
    return " ".join(t for t in (head, shaky) if t)


def leanest_tiers(res: Results) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The leanest tier at the peak and the leanest once settled (ties together, stats.rank);
    None with fewer than two allocators measured, or when noise ranks none, as then there is
    nothing to compare."""
    if len(res.service) < 2:
        return None
    peak = {n: r.peak for n, r in res.service.items()}
    settled = {n: r.settled for n, r in res.service.items()}
    by_peak, by_settled = rank(peak), rank(settled)
    if not by_peak or not by_settled:
        return None
    return by_peak[0], by_settled[0]


def peak_vs_settled(res: Results) -> str:
    tiers = leanest_tiers(res)
    if tiers is None:
        return (
            "With fewer than two allocators measured there is nothing to compare."
            if len(res.service) < 2
            else "The repeats disagreed too much to say which allocator is leanest."
        )
    best_p, best_s = tiers
    peak, settled = res.service[best_p[0]].peak, res.service[best_s[0]].settled
    both = [n for n in best_s if n in best_p]
    if both:
        return (
            f"{names_text(both)} {'is' if len(both) == 1 else 'are'} among the leanest both at "
            f"the busiest moment and once settled."
        )
    return (
        f"The leanest at the busiest moment ({names_text(best_p)}, "
        f"{fmt_mb(peak.center)}) is not the leanest once settled "
        f"({names_text(best_s)}, {fmt_mb(settled.center)}): the better choice "
        "depends on which of the two numbers limits you."
    )


def fingerprints(res: Results, idle: str) -> str:
    if not res.service:
        return "No allocator produced service measurements, so there is no fingerprint."
    groups: dict[str, list[str]] = {
        "keeps": [],
        "returns some": [],
        "returns most": [],
        "still returning": [],
    }
    for n, r in res.service.items():
        if r.settled.falling_after_s is not None:  # where it would stop is not known
            groups["still returning"].append(n)
        else:
            groups[classify_fingerprint(r.peak.center, r.settled.center)].append(n)
    keep, most = fmt_pct(FINGERPRINT_KEEP_BELOW), fmt_pct(FINGERPRINT_RETURN_FROM)
    over = "over the idle" if idle == "the idle" else f"over {idle} of idle"
    labels = {
        "keeps": f"Kept what they reached (less than {keep} of the peak given back {over})",
        "returns some": f"Gave back part of the peak (between {keep} and {most})",
        "returns most": f"Gave back most of the peak ({most} or more)",
        "still returning": "Still returning memory when idle ended, so not classified",
    }
    return " ".join(f"{labels[k]}: {names_text(v)}." for k, v in groups.items() if v)


def payload(res: Results, *, hosted: bool) -> str:
    """What the live payload was, the measure the overhead ratio divides by; a hosted app has
    none the harness can count, and the leak section stands in for it."""
    if hosted:
        return (
            "Memory alone does not say how much of it the program asked for. The built-in "
            "service counts the payload it holds and divides its memory's growth by it (the "
            "overhead ratio); an application of its own has no such count, so no ratio is "
            "computed here, and [Leak or retention?](#leak-or-retention) sets the program's "
            "own heap beside its memory instead."
        )

    def mb(samples: list[Sample | None]) -> str:
        centers = [s.center for s in samples if s is not None]
        return fmt_mb(statistics.median(centers)) if centers else "not measured"

    svc = res.service.values()
    return (
        "Memory alone does not say how much of it the program asked for. The live payload "
        f"does: at the end of load the workers held {mb([r.live_load_end for r in svc])} of "
        f"buffers between them, against {mb([r.live_ready for r in svc])} when the service "
        "was ready. The overhead ratio divides how much the service's anonymous memory grew "
        "after it was ready by how much its live payload grew over the same time. An "
        "allocator that added exactly the payload would score one; everything above that is "
        "kept free memory, fragmentation and the transient allocations of the requests."
    )


def overhead(res: Results, *, hosted: bool = False) -> str:
    """Which allocator costs the most memory per byte the program holds, at rest and at peak.

    The overhead ratio is the memory grown since the service was ready over the live payload
    grown in the same time; rankings and ties as everywhere (stats.rank).
    """
    settled = {n: r.overhead_settled for n, r in res.service.items() if r.overhead_settled}
    peak = {n: r.overhead_peak for n, r in res.service.items() if r.overhead_peak}
    missing = res.missing("service", brief=True) + [
        (n, "no overhead ratio: its live payload did not grow, or was not recorded")
        for n in res.service
        if n not in settled
    ]
    note = not_ranked(missing)
    if not settled and hosted:
        return ""  # the payload sentence said why there is none
    if not settled:
        return (
            "The run recorded no overhead ratio: it needs the workers' live payload when the "
            "service was ready and after idle, and a payload that grew in between."
        )
    if len(settled) == 1:
        (n,) = settled
        at_peak = f" and {fmt_ratio(peak[n].center)} at the peak" if n in peak else ""
        return (
            f"Only {md_safe(n)} has an overhead ratio: once settled it had added "
            f"{fmt_ratio(settled[n].center)} the live payload the traffic built{at_peak}. {note}"
        ).strip()
    tiers = rank(settled)
    peak_part = ""
    pt = rank(peak)
    if len(peak) >= 2 and len(pt) == 1:
        lo_p, hi_p = (f(peak[n].center for n in pt[0]) for f in (min, max))
        at = (
            f"at {fmt_ratio(lo_p)}"
            if fmt_ratio(lo_p) == fmt_ratio(hi_p)
            else f"between {fmt_ratio(lo_p)} and {fmt_ratio(hi_p)}"
        )
        peak_part = f" At the peak {names_text(pt[0])} tied, {at}."
    elif len(peak) >= 2 and pt:
        peak_part = (
            f" At the peak the ratio ran from {fmt_ratio(peak[pt[0][0]].center)} "
            f"({names_text(pt[0])}) to {fmt_ratio(peak[pt[-1][0]].center)} ({names_text(pt[-1])})."
        )
    if not tiers:
        return " ".join(x for x in (noisy_text(settled, fmt_ratio), note) if x)
    if len(tiers) == 1:
        lo = min(settled[n].center for n in tiers[0])
        hi = max(settled[n].center for n in tiers[0])
        head = (
            f"Per byte of live payload, {'both' if len(settled) == 2 else f'all {len(settled)}'} "
            f"allocators cost about the same once settled ({fmt_ratio(lo)} to {fmt_ratio(hi)} "
            "the payload the traffic built)."
        )
    else:
        hi, lo = tiers[-1], tiers[0]
        who = (
            f"{md_safe(hi[0])} costs the most: once settled, its memory had grown by "
            f"{value_text(settled[hi[0]], fmt_ratio)}"
            if len(hi) == 1
            else f"{join_names([named_value(n, settled, fmt_ratio) for n in hi])} tie for "
            "the highest cost: once settled, their memory had grown by those multiples of"
        )
        best = (
            f"{value_text(settled[lo[0]], fmt_ratio)} for {md_safe(lo[0])}, the leanest"
            if len(lo) == 1
            else f"{join_names([named_value(n, settled, fmt_ratio) for n in lo])}, the leanest"
        )
        head = (
            f"Per byte the program holds, {who} the live payload the traffic built, against {best}."
        )
    shaky = noisy_text(settled, fmt_ratio)
    return " ".join(x for x in (head + peak_part, shaky, note) if x)


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
    staged = len(specview.stages(run.spec))
    if staged > 1:  # memory followed the stages: "kept climbing" would hide the falls
        first = (
            f"Over the {load_s} of load in {staged} stages, {len(rising)} of {len(climbs)} "
            "allocators ended it above where they stood after its first seconds"
            if rising
            else f"Over the {load_s} of load in {staged} stages, no allocator ended it above "
            "where it stood after its first seconds"
        )
        return (
            f"{first}; the largest rise was {md_safe(top)}'s, from {fmt_mb(a)} to {fmt_mb(b)}, "
            "with the stages moving it on the way (the band above the chart)."
        )
    first = (
        f"Over the {load_s} of load, "
        f"{len(rising)} of {len(climbs)} allocators kept climbing after the first "
        "seconds"
        if rising
        else f"Over the {load_s} of load no allocator kept climbing after the first seconds"
    )
    return f"{first}; the largest climb was {md_safe(top)}'s, from {fmt_mb(a)} to {fmt_mb(b)}."


def live_sentence(res: Results, live: LivePayload, method: Method) -> str:
    """The live payload the chart's dashed line shows: where it started, ended and filled."""
    ready = [r.live_ready.center for r in res.service.values() if r.live_ready]
    end = [r.live_load_end.center for r in res.service.values() if r.live_load_end]
    if not live.line and not end:
        return "The run recorded no live payload, so the chart shows memory alone."
    parts = []
    if ready and end:
        parts.append(
            f"The live payload, the bytes the program itself held, was "
            f"{fmt_mb(statistics.median(ready))} when the service was ready and "
            f"{fmt_mb(statistics.median(end))} at the end of load, built up by the traffic."
        )
    fill = live.fill_measured_s
    estimate = method.live_set_fill_s
    if fill is not None:
        when = (
            "during warm-up, before the load began"
            if fill < 0
            else f"{fmt_duration(fill)} into the load"
        )
        parts.append(
            f"The payload first reached {fmt_pct(FILL_SHARE)} of its end-of-load value {when}"
        )
        parts[-1] += (
            f"; the spec's live-set model estimated {fmt_duration(estimate)} of load to fill it."
            if estimate is not None
            else "."
        )
    elif estimate is not None:
        parts.append(
            f"The spec's live-set model estimated {fmt_duration(estimate)} of load to fill it."
        )
    return " ".join(parts)
