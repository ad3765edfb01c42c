"""Sentences about steps of the method as the run recorded them, never as the study usually
runs them: what the idle phase received, the forced reclaim (or why none ran), from when
memory was sampled, and whether the load generator held its rate (bench.report.method).
"""

from __future__ import annotations

import statistics

from bench.report import series as ser
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.method import Method, idle_stats_calls, reclaim_reason
from bench.report.prose.rankings import names_text
from bench.report.prose.workload import hosted_app
from bench.report.run import Run
from bench.report.units import fmt_count, fmt_mb, fmt_seconds, join_names, md_safe

__all__ = ["idle", "load_held", "reclaim", "sampling"]


def idle(run: Run, res: Results, method: Method) -> str:
    """What the idle phase contained, as recorded: the traffic, or a silent idle, and the
    runner's own /stats call as idle began where the run recorded one."""
    idle_s = fmt_seconds(float(specview.get(run.spec, "service.idle_s")))
    # an idle that ends once memory has settled has no one length: the settling section says
    phase = (
        "idle phase"
        if specview.get(run.spec, "service.idle_ends") == "settled"
        else f"{idle_s} idle phase"
    )
    per = []
    for name in res.service:
        traffic = run.idle.get(name)
        reps = res.service[name].settled.n or 1
        per.append(traffic.requests / reps if traffic else 0)
    recorded = sum(t.requests for t in run.idle.values())
    failed = sum(t.failed for t in run.idle.values())
    runner = (
        "the runner asked every worker for its live set and heap once as idle began"
        if idle_stats_calls(run.manifest)
        else ""
    )
    if method.idle_rate is None and not recorded:
        return f"The run did not record what its {phase} contained."
    if (method.idle_rate or 0) <= 0 and not recorded:
        after = f"; {runner}, and nothing called the service after that" if runner else ""
        return (
            f"During the {phase} no traffic was sent (a silent idle){after}: the "
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
    effect = (
        "each of those calls (answered by the harness, not the app) wakes the worker it "
        "reaches and calls the allocator"
        if hosted_app(run)
        else "each of those calls frees what has expired in the worker it reaches and calls "
        "the allocator"
    )
    return (
        f"During the {phase} the service received {what} (about "
        f"{fmt_count(count)} requests per allocator and repeat{broke}){also}: {effect}, so a "
        "purge that waits for allocator activity had its chance."
    )


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
    also = f" No memory after a reclaim was recorded for {names_text(skipped)}." if skipped else ""
    if freed[top] <= 0:
        return f"The forced reclaim at the end{via} returned nothing for any allocator.{why}{also}"
    return (
        f"The forced reclaim at the end{via} returned at most {fmt_mb(freed[top])} "
        f"({md_safe(top)}), against settled values of "
        f"{fmt_mb(min(r.settled.center for r in res.service.values()))} and up.{why}{also}"
    )


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
