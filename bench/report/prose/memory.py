"""Sentences whose comparative words are computed from the results.

Each function returns one or a few sentences of Markdown-safe text. Ranking words come from
stats.rank (so ties are called ties), "barely moved" from stats.latency_verdict, keep-or-return
from stats.classify_fingerprint; no function assumes which allocator wins or how many ran.
A sentence about a step of the method (the idle traffic, a forced reclaim) follows what the
run recorded (bench.report.method), never what the study usually does.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bench.report import series as ser
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.compare import (
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
from bench.report.live import FILL_SHARE, LivePayload, live_payload
from bench.report.method import Method, idle_stats_calls, method_of, reclaim_reason
from bench.report.provenance import evidence_state
from bench.report.run import Run
from bench.report.units import (
    fmt_count,
    fmt_duration,
    fmt_mb,
    fmt_mops,
    fmt_mops_cpu,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    join_names,
    md_safe,
)
from bench.report.versions import MIMALLOC_PURGE_FROM, mimalloc_v2_predates_purge, parse_version

__all__ = ["sentences"]

Fmt = Callable[[float], str]


def _names(names: list[str] | tuple[str, ...]) -> str:
    return join_names([md_safe(n) for n in names])


def _tier_text(tier: tuple[str, ...], items: Mapping[str, Sample], fmt: Fmt) -> str:
    if len(tier) == 1:
        return f"{md_safe(tier[0])} ({fmt(items[tier[0]].center)})"
    vals = join_names([fmt(items[n].center) for n in tier])
    return f"{_names(tier)}, tied ({vals})"


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
    body = _ranking(items, fmt, low_word, high_word, descending)
    return f"{body} {not_ranked(missing)}".strip() if items else body


def _ranking(
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
        "keeps": f"Kept what they reached (less than {keep} of the peak given back over "
        f"{idle} of idle)",
        "returns some": f"Gave back part of the peak (between {keep} and {most})",
        "returns most": f"Gave back most of the peak ({most} or more)",
    }
    return " ".join(f"{labels[k]}: {_names(v)}." for k, v in groups.items() if v)


def reclaim(run: Run, res: Results, method: Method) -> str:
    """What the forced reclaim returned, or why none ran: only what the run recorded.

    On cgroup v1 (or without a memory cgroup) no reclaim is possible and none runs; the
    sentence then says so and why, and never that a reclaim "returned nothing".
    """
    after = {n: r.reclaimed.center for n, r in res.service.items() if r.reclaimed is not None}
    if not after:
        if method.reclaim_possible is False:
            why = reclaim_reason(method.reclaim_how) or "the run recorded no reason"
            return (
                f"No forced reclaim ran: none was possible on this machine ({md_safe(why)}). "
                "The settled value, taken after the allocators' own return mechanisms had "
                "their chance, is the last measurement of each allocator."
            )
        if method.reclaim_possible:
            how = f" ({md_safe(method.reclaim_how)})" if method.reclaim_how else ""
            return f"A forced reclaim was possible{how}, but the run recorded no memory after one."
        return "The run recorded no forced reclaim, and not whether one was possible."
    freed = {n: res.service[n].settled.center - v for n, v in after.items()}
    top = max(freed, key=lambda n: (freed[n], n))
    via = f" ({md_safe(method.reclaim_how)})" if method.reclaim_how else ""
    swap = (run.manifest.get("confounds") or {}).get("swap_bytes")
    why = (
        " With swap off, dirty anonymous pages have nowhere to go, so little can be expected."
        if swap == 0
        else ""
    )
    skipped = [n for n in res.service if n not in after]
    also = f" No memory after a reclaim was recorded for {_names(skipped)}." if skipped else ""
    if freed[top] <= 0:
        return f"The forced reclaim at the end{via} returned nothing for any allocator.{why}{also}"
    return (
        f"The forced reclaim at the end{via} returned at most {fmt_mb(freed[top])} "
        f"({md_safe(top)}), against settled values of "
        f"{fmt_mb(min(r.settled.center for r in res.service.values()))} and up.{why}{also}"
    )


def idle(run: Run, res: Results, method: Method) -> str:
    """What the idle phase contained, as recorded: the traffic, or a silent idle, and the
    runner's own /stats call as idle began where the run recorded one."""
    idle_s = fmt_seconds(float(specview.get(run.spec, "service.idle_s")))
    per = []
    for name in res.service:
        traffic = run.idle.get(name)
        reps = res.service[name].settled.n or 1
        per.append(traffic.requests / reps if traffic else 0)
    recorded = sum(t.requests for t in run.idle.values())
    failed = sum(t.failed for t in run.idle.values())
    runner = (
        "the runner asked every worker for its live set once as idle began"
        if idle_stats_calls(run.manifest)
        else ""
    )
    if method.idle_rate is None and not recorded:
        return f"The run did not record what its {idle_s} idle phase contained."
    if (method.idle_rate or 0) <= 0 and not recorded:
        after = f"; {runner}, and nothing called the service after that" if runner else ""
        return (
            f"During the {idle_s} idle phase no traffic was sent (a silent idle){after}: the "
            "workers' expired buffers stayed unfreed until a request would come, and an "
            "allocator that returns memory only when it is next called had no call to do it "
            "in, so settled shows what is left with no activity at all."
        )
    what = md_safe(method.idle_traffic or "requests")
    if not recorded:
        return f"The spec asked for {what} during idle, but the run recorded no idle requests."
    count = statistics.median(per) if per else 0
    broke = f", {fmt_count(failed)} of them failed" if failed else ""
    also = f", and {runner}" if runner else ""
    return (
        f"During the {idle_s} idle phase the service received {what} (about "
        f"{fmt_count(count)} requests per allocator and repeat{broke}){also}: each of those "
        "calls frees what has expired in the worker it reaches and calls the allocator, so a "
        "purge that waits for allocator activity had its chance."
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


def control_measure(res: Results) -> str:
    """Which control throughput ranks the allocators: "wall" (allocations per second) as the
    original study did, or "cpu" (per CPU-second) when the control had more threads than
    CPUs, since its threads then took turns and the wall-clock rate counts their waiting."""
    over = any(c.oversubscribed for c in res.control.values())
    has_cpu = any(c.allocs_per_cpu_s for c in res.control.values())
    return "cpu" if over and has_cpu else "wall"


def _throughputs(res: Results, measure: str) -> tuple[dict[str, Sample], Fmt]:
    if measure == "cpu":
        items = {n: c.allocs_per_cpu_s for n, c in res.control.items() if c.allocs_per_cpu_s}
        return items, fmt_mops_cpu
    return {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}, fmt_mops


def control_throughput(res: Results) -> str:
    measure = control_measure(res)
    speed, fmt = _throughputs(res, measure)
    if not speed:
        return "The C++ control was not run or recorded no throughput."
    how = " per CPU-second" if measure == "cpu" else ""
    if len(speed) == 1:
        (n,) = speed
        return f"Only {md_safe(n)} ran in the C++ control, at {fmt(speed[n].center)}."
    tiers = rank(speed, descending=True)
    if len(tiers) == 1:
        return (
            f"In the C++ control {'both' if len(speed) == 2 else f'all {len(speed)}'} "
            f"allocators tie on throughput{how}, within the noise of their repeats."
        )
    fast, slow = tiers[0], tiers[-1]
    ratio = speed[fast[0]].center / speed[slow[0]].center
    return (
        f"In the C++ control{how}, {_lead(fast, 'fastest')} at {fmt(speed[fast[0]].center)} "
        f"and {_lead(slow, 'slowest')} at {fmt(speed[slow[0]].center)}, "
        f"{fmt_ratio(ratio)} apart."
    )


def control_ranking(res: Results, missing: Sequence[tuple[str, str]]) -> str:
    """The control's allocators from fastest to slowest, on the measure control_measure picks."""
    measure = control_measure(res)
    speed, fmt = _throughputs(res, measure)
    return ranking(speed, fmt, "fastest", "slowest", descending=True, missing=missing)


def control_other(res: Results) -> str:
    """The control ranked on the other throughput measure, for comparison."""
    measure = control_measure(res)
    other = "wall" if measure == "cpu" else "cpu"
    speed, fmt = _throughputs(res, other)
    if not res.control:
        return ""
    if not speed:
        return (
            "The run recorded no CPU time for the control, so there is no figure per CPU-second."
            if other == "cpu"
            else "The run recorded no wall-clock throughput for the control."
        )
    lead = (
        "Counted per CPU-second of churn instead, which leaves out any time the threads "
        "waited for a CPU, "
        if other == "cpu"
        else "Counted per wall-clock second instead, which includes the turns the threads waited, "
    )
    body = _ranking(speed, fmt, "fastest", "slowest", True)
    return lead + body[:1].lower() + body[1:]


def control_oversubscription(res: Results) -> str:
    """Whether the control had a CPU for every thread, from the `oversubscribed` column."""
    if not res.control:
        return ""
    over = [c.oversubscribed for c in res.control.values() if c.oversubscribed is not None]
    threads = max((c.threads or 0 for c in res.control.values()), default=0)
    count = f"{threads} threads" if threads else "its threads"
    if not over:
        return "The run did not record whether the control had a CPU for every thread."
    if any(over):
        names = [n for n, c in res.control.items() if c.oversubscribed]
        who = "" if len(names) == len(res.control) else f" (for {_names(names)})"
        return (
            f"The control ran {count} on fewer CPUs than threads{who}, so its threads took "
            "turns: the wall-clock rate counts that waiting, and allocations per CPU-second, "
            "which count only the time the threads ran, are the fairer comparison here."
        )
    return (
        f"The control had a CPU for each of its {count.split()[0]} threads, so allocations "
        "per wall-clock second compare fairly; the figures per CPU-second are in the chart's "
        "data table."
        if threads
        else "The control had a CPU for every thread, so allocations per wall-clock second "
        "compare fairly."
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
    measure = control_measure(res)
    speed, _ = _throughputs(res, measure)
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
            f"control favours {_names(fast)}" + (" (per CPU-second)." if measure == "cpu" else ".")
        )
    return " ".join(parts)


def not_measured(res: Results) -> str:
    """Every allocator without service data, with the reason: failed, skipped, or ran and
    recorded nothing (so none is ever silently dropped from the comparisons)."""
    missing = res.not_measured
    empty = [a for a in res.allocators if a.status == "ok" and a.name not in res.service]
    if not missing and not empty:
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
            f"{_names([a.name for a in empty])} ran but the run recorded no service "
            "measurements for " + ("it." if len(empty) == 1 else "them.")
        )
    out.append("The comparisons below name them and leave them out.")
    return " ".join(out)


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


def sampling(run: Run, method: Method) -> str:
    """From when memory was sampled, and which phases the chart therefore shows."""
    spans = [sp.phase for sp in ser.phase_spans(run.memory, "service")]
    words = {"start": "start-up", "warmup": "warm-up", "reclaim": "the forced reclaim"}
    phases = join_names([words.get(p, p) for p in spans])
    if not method.memory_sampled_from:
        return (
            "The run did not record from when memory was sampled; the chart starts at its "
            "first sample" + (f" and covers {phases}." if phases else ".")
        )
    return f"Memory was sampled from the {md_safe(method.memory_sampled_from)} on" + (
        f", so the chart shows the whole climb: {phases}." if phases else "."
    )


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


def overhead(res: Results) -> str:
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
    if len(peak) >= 2:
        pt = rank(peak)
        peak_part = (
            f" At the peak the ratio ran from {fmt_ratio(peak[pt[0][0]].center)} "
            f"({_names(pt[0])}) to {fmt_ratio(peak[pt[-1][0]].center)} ({_names(pt[-1])})."
        )
    if len(tiers) == 1:
        lo = min(x.center for x in settled.values())
        hi = max(x.center for x in settled.values())
        head = (
            f"Per byte of live payload, {'both' if len(settled) == 2 else f'all {len(settled)}'} "
            f"allocators cost about the same once settled ({fmt_ratio(lo)} to {fmt_ratio(hi)} "
            "the payload the traffic built)."
        )
    else:
        hi, lo = tiers[-1], tiers[0]
        verb = "costs the most" if len(hi) == 1 else "tie for the highest cost"
        head = (
            f"Per byte the program holds, {_names(hi)} {verb}: once settled, "
            f"{'its' if len(hi) == 1 else 'their'} memory had grown by "
            f"{fmt_ratio(settled[hi[0]].center)} the live payload the traffic built, against "
            f"{fmt_ratio(settled[lo[0]].center)} for {_names(lo)}, the leanest."
        )
    return " ".join(x for x in (head + peak_part, note) if x)


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


def flags(res: Results) -> str:
    """Which allocators' numbers the method checks flagged, and why (from the summary)."""
    if not res.flagged:
        return (
            "No repeat was flagged by the method checks (failed requests, holes in the memory "
            "samples of the peak or settle window, a call of the runner inside the settle "
            "window, a control that rested less than the service or ran more threads than "
            "CPUs)."
        )
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for f in res.flagged:
        groups.setdefault((f.allocator, f.experiment), []).append((f.repeat, f.flags))
    out = []
    for (name, experiment), items in groups.items():
        reps = sorted({r for r, _ in items})
        which = (
            f"repeat {reps[0]}"
            if len(reps) == 1
            else "repeats " + join_names([str(r) for r in reps])
        )
        texts = list(dict.fromkeys(t for _, text in items for t in text.split("; ") if t))
        out.append(
            f"{md_safe(name)}'s {md_safe(experiment)} numbers are flagged ({which}): "
            f"{md_safe('; '.join(texts))}."
        )
    out.append("Flagged numbers stay in the medians and are marked in the full data table.")
    return " ".join(out)


def version_notes(res: Results) -> str:
    """A caveat for a measured mimalloc v2 older than the 2.1 purge semantics ('' if none)."""
    old = [a for a in res.allocators if a.name in res.service and mimalloc_v2_predates_purge(a)]
    if not old:
        return ""
    purge = ".".join(map(str, MIMALLOC_PURGE_FROM))
    items = []
    for a in old:
        major, minor = parse_version(a.version) or (0, 0)
        version = md_safe(a.version)
        items.append(f"{md_safe(a.name)} here is mimalloc {version}, of the {major}.{minor} series")
    return (
        f"{'; '.join(items)}: that predates the purge semantics of mimalloc {purge} (when and "
        "how freed memory is returned to the kernel), so its idle behaviour may differ from a "
        "current v2."
    )


def sentences(
    run: Run, res: Results, live: LivePayload | None = None
) -> dict[str, Callable[[], str]]:
    """Every sentence a page can quote as {{ say.<name> }}, computed when first used."""
    idle_s = fmt_seconds(float(specview.get(run.spec, "service.idle_s")))
    method = method_of(run.manifest)
    svc: dict[str, Any] = res.service
    settled = {n: r.settled for n, r in svc.items()}
    peak = {n: r.peak for n, r in svc.items()}
    shed = {
        n: Sample((f,), f, 0.0)
        for n, r in svc.items()
        if (f := shed_fraction(r.peak.center, r.settled.center)) is not None
    }
    overhead_settled = {n: r.overhead_settled for n, r in svc.items() if r.overhead_settled}
    missing = res.missing("service", brief=True)
    ctl_missing = (
        res.missing("control", brief=True) if specview.get(run.spec, "control.enabled") else []
    )

    def payload() -> LivePayload:
        return live if live is not None else live_payload(run, [n for n in res.names if n in svc])

    return {
        "headline": lambda: headline(res),
        "settled_ranking": lambda: ranking(settled, fmt_mb, "leanest", "heaviest", missing=missing),
        "peak_ranking": lambda: ranking(peak, fmt_mb, "leanest", "heaviest", missing=missing),
        "shed_ranking": lambda: ranking(
            shed, fmt_pct, "gave back most", "gave back least", descending=True, missing=missing
        ),
        "overhead": lambda: overhead(res),
        "overhead_ranking": lambda: ranking(
            overhead_settled, fmt_ratio, "leanest", "heaviest", missing=missing
        ),
        "peak_vs_settled": lambda: peak_vs_settled(res),
        "fingerprints": lambda: fingerprints(res, idle_s),
        "idle": lambda: idle(run, res, method),
        "reclaim": lambda: reclaim(run, res, method),
        "staircase": lambda: staircase(run, res),
        "sampling": lambda: sampling(run, method),
        "live_payload": lambda: live_sentence(res, payload(), method),
        "flags": lambda: flags(res),
        "version_notes": lambda: version_notes(res),
        "latency": lambda: latency(res),
        "latency_median": lambda: latency_median(res),
        "load": lambda: load_held(run, res),
        "control_oversubscription": lambda: control_oversubscription(res),
        "control_throughput": lambda: control_throughput(res),
        "control_ranking": lambda: control_ranking(res, ctl_missing),
        "control_other": lambda: control_other(res),
        "spread_compare": lambda: spread_compare(res),
        "guidance": lambda: guidance(res),
        "guidance_costs": lambda: guidance_costs(res),
        "not_measured": lambda: not_measured(res),
        "noise": lambda: noise(res),
        "disturbed": lambda: disturbed(res),
        "evidence": lambda: evidence(res),
    }
