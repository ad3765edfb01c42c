"""The experiment: the spec as run, the phases (idle, reclaim, sampling, load), the machine.

Tables {{ table.spec }}, {{ table.confounds }}; sentences {{ say.idle }}, {{ say.reclaim }},
{{ say.sampling }}, {{ say.load }}; values `spec.*`, `control.*` of the spec, `method.*`.

The sentences tell the steps of the method as the run recorded them (bench.report.recorded_method),
never as the study usually runs them: what the idle phase received, the forced reclaim (or why
none ran), from when memory was sampled, and whether the load generator held its rate.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.report import experiment, specview
from bench.report import series as ser
from bench.report.aggregate import Results
from bench.report.live import LivePayload
from bench.report.prose.rankings import names_text
from bench.report.recorded_method import Method, idle_stats_calls, reclaim_reason
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.workload import hosted_app
from bench.report.units import (
    fmt_bytes_kb,
    fmt_count,
    fmt_mb,
    fmt_pct,
    fmt_seconds,
    fmt_share,
    join_names,
    md_safe,
)

__all__ = ["MethodSection", "idle", "load_held", "reclaim", "sampling"]


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
        "each of those calls (answered by the harness, not the app) wakes the worker it reaches"
        if hosted_app(run)
        else "each of those calls frees what has expired in the worker it reaches"
    )
    if method.idle_probe is not None:
        turn = (
            "and the probe's blocks, larger than the allocators' per-thread caches, reach the "
            "allocator itself, so a purge that waits for allocator activity (jemalloc's "
            "decay without its background thread, mimalloc's purge delay) had its turn"
        )
    else:
        turn = (
            "but a bare probe's small allocations may never get past the allocators' "
            "per-thread caches, so a purge that waits for allocator activity (jemalloc's "
            "decay without its background thread) may not have had its turn: what such an "
            "allocator gave back here is partly chance"
        )
    return (
        f"During the {phase} the service received {what} (about "
        f"{fmt_count(count)} requests per allocator and repeat{broke}){also}: {effect}, "
        f"{turn}."
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
        scheduled = f"{rate:g}" if not specview.stages(run.spec) else f"mean of {rate:,.0f}"
        parts.append(
            f"The load generator {held} the scheduled {scheduled} requests/s "
            f"(achieved {lo:,.1f} to {hi:,.1f})"
        )
    if total:
        parts.append(
            "every one of the " + fmt_count(total) + " requests succeeded"
            if not errors
            else f"{fmt_count(errors)} of {fmt_count(total)} requests failed"
        )
    return ("; ".join(parts) + ".") if parts else "The run recorded no request counts."


@dataclass(frozen=True)
class MethodData:
    run: Run
    res: Results
    live: LivePayload
    method: Method


class MethodSection(Section[MethodData]):
    name = "method"
    title = "The experiment"

    def compute(self, loaded: Loaded) -> MethodData:
        return MethodData(loaded.run, loaded.res, loaded.live, loaded.method)

    def values(self, data: MethodData) -> dict[str, str]:
        spec, res = data.run.spec, data.res
        out = _spec_values(spec)
        out.update(_method_values(data.method))
        if spec_threads := specview.get(spec, "control.threads"):
            ran = {c.threads for c in res.control.values() if c.threads}
            # "cores": the threads as run, one per CPU of the machine that ran the control
            out["control.threads"] = (
                str(max(ran)) if spec_threads == "cores" and ran else str(spec_threads)
            )
        return out

    def sentences(self, data: MethodData) -> Entries:
        run, res, method = data.run, data.res, data.method
        return {
            "idle": lambda: idle(run, res, method),
            "reclaim": lambda: reclaim(run, res, method),
            "sampling": lambda: sampling(run, method),
            "load": lambda: load_held(run, res),
        }

    def tables(self, data: MethodData, prefix: str) -> Entries:
        return {
            "spec": lambda: experiment.spec_table(data.run, data.live),
            "confounds": lambda: experiment.confounds_table(data.run),
        }


def _spec_values(spec: dict[str, Any]) -> dict[str, str]:
    g = specview.get
    mix = ", ".join(f"{fmt_pct(share)} {name}" for name, share in specview.mix_shares(spec))
    return {
        "spec.workers": str(g(spec, "service.workers")),
        "spec.rate": specview.load_text(spec),
        "spec.warmup": fmt_seconds(g(spec, "service.warmup_s")),
        "spec.load": fmt_seconds(g(spec, "service.load_s")),
        "spec.idle": fmt_seconds(g(spec, "service.idle_s")),
        "spec.settle_window": fmt_seconds(g(spec, "service.settle_window_s")),
        "spec.sample_interval": fmt_seconds(g(spec, "service.sample_interval_s")),
        "spec.python_malloc": str(g(spec, "service.python_malloc")),
        "spec.idle_rate": f"{float(g(spec, 'service.idle_rate')):g} requests/s",
        "spec.timeout": fmt_seconds(g(spec, "service.request_timeout_s")),
        "spec.live_buffers": fmt_count(g(spec, "service.churn.live_buffers")),
        "spec.initial_buffers": fmt_count(specview.start_buffers(spec)),
        "spec.alloc_per_call": fmt_count(g(spec, "service.churn.alloc_per_call")),
        "spec.long_lived_share": fmt_share(float(g(spec, "service.churn.long_lived_share"))),
        "spec.short_lifetime": specview.short_lifetime_text(spec),
        "spec.payload": specview.payload_text(spec),
        "spec.buffer_min": fmt_bytes_kb(int(g(spec, "service.churn.min_bytes"))),
        "spec.buffer_max": fmt_bytes_kb(int(g(spec, "service.churn.max_bytes"))),
        "spec.live_set.mb": fmt_mb(specview.live_bytes(spec)),
        "spec.mix": mix or "none",
        "spec.repeats": str(g(spec, "repeats")),
        "spec.allocators": join_names(specview.allocator_names(spec)),
        "control.threads": str(g(spec, "control.threads")),
        "control.seconds": fmt_seconds(g(spec, "control.seconds")),
        "control.idle": fmt_seconds(specview.control_idle_s(spec)),
        "control.repeats": str(g(spec, "control.repeats")),
        "control.live_set.mb": fmt_mb(specview.control_live_bytes(spec)),
    }


def _method_values(method: Method) -> dict[str, str]:
    """The method as recorded by the run (what the idle phase held, whether a reclaim ran)."""
    if method.reclaim_possible is None:
        reclaim = "not recorded"
    elif method.reclaim_possible:
        reclaim = f"possible ({method.reclaim_how or 'how not recorded'})"
    else:
        reclaim = f"not possible ({reclaim_reason(method.reclaim_how) or 'no reason recorded'})"
    return {
        "method.idle_traffic": method.idle_traffic or "not recorded",
        "method.reclaim": reclaim,
        "method.latency_failures": method.latency_failures or "not recorded",
        "method.memory_sampled_from": method.memory_sampled_from or "not recorded",
        "method.order": method.order_rule or "not recorded",
    }
