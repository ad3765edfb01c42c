"""One service repeat reduced to its summary row and records: peak, settled, latency, flags.

The runner (bench.experiments.service) measures; this turns what it measured (its
`RepeatEnd`) and what its watchers added (their `Contribution`s combined,
bench.experiments.watcher) into the row of the summary table and the records of the manifest,
and says what makes the repeat doubtful by the method itself (method_flags) or what makes
the service unfit to study (broken_app).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.allocators.registry import Allocator
from bench.experiments import loadstages
from bench.experiments.harness import memory_rows
from bench.experiments.watcher import Contribution, RepeatEnd
from bench.measure import runstats
from bench.spec import Spec

__all__ = [
    "ServiceRepeat",
    "broken_app",
    "method_flags",
    "server_errors",
    "service_error_flag",
    "summarise_repeat",
]


@dataclass(frozen=True)
class ServiceRepeat:
    memory_rows: list[dict[str, Any]]
    request_rows: list[dict[str, Any]]
    summary_row: dict[str, Any]
    phases: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    loadgen: dict[str, Any]
    sampler: dict[str, Any]
    live_set: list[dict[str, Any]]
    #: the watchers' tables (bench.experiments.watcher): `restarts`, `retention`
    tables: dict[str, list[dict[str, Any]]]
    #: the memory limit's account of this repeat (None without a limit): what was set, the
    #: group's counters at every phase boundary, the workers it killed
    memory_limit: dict[str, Any] | None = None


def server_errors(request_rows: list[dict[str, Any]]) -> tuple[int, int]:
    """(load requests the service answered with a 5xx, load requests)."""
    in_load = [r for r in request_rows if r["phase"] == "load"]
    return sum(1 for r in in_load if (r.get("status") or 0) >= 500), len(in_load)


def _first_error(app_errors: list[str]) -> str:
    return f": {' | '.join(app_errors)}" if app_errors else ""


def broken_app(request_rows: list[dict[str, Any]], app_errors: list[str]) -> str | None:
    """Why the service cannot be studied, when it answered most of its load with 5xx.

    A service that fails most requests measures its error path, not the work it was meant to
    do, so its allocator fails with the app's own first error lines; a few 5xx answers only
    flag the repeat (service_error_flag).
    """
    errors, requests = server_errors(request_rows)
    if requests == 0 or errors * 2 < requests:
        return None
    first = _first_error(app_errors)
    return f"the app answered {errors} of {requests} load requests with 5xx{first}"


def service_error_flag(request_rows: list[dict[str, Any]], app_errors: list[str]) -> str | None:
    """The flag of a repeat in which the service answered some load requests with 5xx."""
    errors, requests = server_errors(request_rows)
    if not errors:
        return None
    return f"{errors} of {requests} load requests answered 5xx{_first_error(app_errors)}"


def summarise_repeat(
    spec: Spec, alloc: Allocator, repeat: int, end: RepeatEnd, added: Contribution
) -> ServiceRepeat:
    """The repeat's summary row and records: the core's measurements (`end`) and what the
    watchers added (`added`, their contributions combined)."""
    s = spec.service_for(alloc.name)
    samples, request_rows, fault = end.samples, end.request_rows, end.fault
    times = [x.t_s for x in samples]
    values = [x.anon_bytes for x in samples]
    load = end.log.span("load")
    # the load's stages on the repeat's clock, for its memory rows and its saturation alike
    load_entry = next((e for e in end.log.entries if e["phase"] == "load"), None)
    stages = loadstages.spans(s, load_entry["start_s"]) if load_entry is not None else []
    idle = end.log.span("idle")
    peak = runstats.peak(times, values, *load) if load else None
    fit = (
        runstats.settling(times, values, idle[0], idle[1], s.settle_window_s)
        if idle
        else runstats.Settling(None, None, None)
    )
    settled = fit.settled
    idle_run_s = round(idle[1] - idle[0], 3) if idle else None
    in_load = [r for r in request_rows if r["phase"] == "load"]
    lat_ms, failed = runstats.charged_latencies_ms(in_load, s.request_timeout_s)
    late_ms = [(r["sent_s"] - r["intended_s"]) * 1000 for r in in_load if r["sent_s"] is not None]
    late_p99 = runstats.percentile(late_ms, 99)
    sample_late = max((x.late_s for x in samples), default=None)
    reason = runstats.disturbance(
        send_late_p99_ms=late_p99,
        foreign_cpu_pct=end.cpu["foreign_cpu_pct"],
        sample_late_max_s=sample_late,
        sample_interval_s=s.sample_interval_s,
        start_late_s=end.loadgen.start_late_s,
    )
    flags = method_flags(
        times=times,
        load=load,
        idle=idle,
        settle_window_s=s.settle_window_s,
        interval_s=s.sample_interval_s,
        failed=failed,
        requests=len(in_load),
        timeout_s=s.request_timeout_s,
        calls=end.calls,
    )
    achieved = (len(in_load) - failed) / s.load_s
    # failures a dead, killed or recycled worker explains are not the app's pace
    explained = fault is not None or added.explains_failures
    # the pace is what was answered at all: an app that answers 5xx fast keeps up (its
    # errors are flagged apart); one that leaves requests unanswered until the timeout does not
    unanswered = sum(1 for r in in_load if not r.get("status"))
    saturated = (
        runstats.saturation(
            (len(in_load) - unanswered) / s.load_s, s.rate, unanswered, len(in_load)
        )
        or loadstages.saturated_stage(stages, in_load)
        if load and not explained
        else None
    )
    if saturated:  # first of the method's flags: the failures below follow from it
        flags.insert(0, saturated)
    if fault is None and idle_run_s is not None and fit.still_falling:
        flags.append(f"still returning memory when idle ended after {idle_run_s:.0f} s")
    flags += added.flags
    if server := service_error_flag(request_rows, end.app_errors):
        flags.insert(0, server)  # says why those requests failed
    flags[:0] = added.lead_flags  # before the failed requests they may have caused
    if fault is not None:  # first: every other flag may be its consequence
        flags.insert(0, fault)
    cols = added.columns
    ready_anon = end.ready.anon_bytes if end.ready is not None else None
    in_load_samples = [x.anon_bytes for x in samples if x.phase == "load"]
    row = {
        "experiment": "service",
        "allocator": alloc.name,
        "repeat": repeat,
        "peak_anon_bytes": peak,
        "settled_anon_bytes": settled,
        "reclaimed_anon_bytes": end.last.anon_bytes if end.last else None,
        "p50_ms": runstats.percentile(lat_ms, 50),
        "p95_ms": runstats.percentile(lat_ms, 95),
        "p99_ms": runstats.percentile(lat_ms, 99),
        "achieved_rps": achieved,
        "saturated": saturated is not None,
        "requests": len(in_load),
        "errors": failed,
        **end.cpu,
        "send_late_p99_ms": late_p99,
        "disturbed": reason is not None,
        "disturbed_reason": reason,
        "ready_anon_bytes": ready_anon,
        "overhead_peak": runstats.overhead_ratio(
            peak, ready_anon, cols.get("load_end_live_bytes"), cols.get("ready_live_bytes")
        ),
        "overhead_settled": runstats.overhead_ratio(
            settled, ready_anon, cols.get("idle_end_live_bytes"), cols.get("ready_live_bytes")
        ),
        "given_back_share": runstats.given_back_share(peak, settled),
        "idle_run_s": idle_run_s,
        "settle_time_s": fit.settle_time_s,
        "still_falling": fit.still_falling,
        "flagged": bool(flags),
        "flags": "; ".join(flags) if flags else None,
        "load_end_anon_bytes": in_load_samples[-1] if in_load_samples else None,
        **cols,
    }
    summary = end.loadgen
    loadgen_rec = {
        "repeat": repeat,
        "per_worker": added.records.get("per_worker", []),
        "send_late_p99_ms": late_p99,
        "cpu_pct": summary.cpu_pct,
        "cpu_s": summary.cpu_s,
        "start_late_s": summary.start_late_s,
        "error_kinds": summary.error_kinds,
        "loop": summary.loop,
        "probe_workers_pinned": summary.probe_workers_pinned,
        "cpus": summary.cpus,
        "stages": [st.model_dump() for st in summary.stages],
    }
    sampler_rec = {
        "repeat": repeat,
        "samples": len(samples),
        "cpu_s": end.sampler.cpu_s,
        "late_max_s": sample_late,
        "errors": end.sampler.errors[:10],
        "reclaim": end.reclaim_how,
        "reclaim_ran": end.last is not None,
        "stats_calls": end.calls,
        "teardown_s": round(end.teardown_s, 3),
        "idle": {
            "ends": s.idle_ends,
            "least_s": end.idle_least_s,
            "most_s": s.idle_s,
            "ran_s": idle_run_s,
        },
        **added.sampler,
    }
    mem_rows = memory_rows(samples, experiment="service", allocator=alloc.name, repeat=repeat)
    loadstages.tag(mem_rows, stages)
    return ServiceRepeat(
        mem_rows,
        request_rows,
        row,
        end.log.entries,
        end.proofs,
        loadgen_rec,
        sampler_rec,
        added.records.get("live_set", []),
        added.rows,
        added.records.get("memory_limit"),
    )


def method_flags(
    *,
    times: list[float],
    load: tuple[float, float] | None,
    idle: tuple[float, float] | None,
    settle_window_s: float,
    interval_s: float,
    failed: int,
    requests: int,
    timeout_s: float,
    calls: list[dict[str, Any]],
) -> list[str]:
    """What makes this repeat's numbers doubtful by the method itself (not machine noise)."""
    flags = []
    if failed:
        flags.append(
            f"{failed} of {requests} load requests failed (counted at {timeout_s:g} s or more)"
        )
    if load is None:
        flags.append("no load phase was recorded")
    elif gap := runstats.sampling_gap(times, *load, interval_s, what="peak"):
        flags.append(gap)
    if idle is None:
        flags.append("no idle phase was recorded")
    else:
        window = (idle[1] - settle_window_s, idle[1])
        if gap := runstats.sampling_gap(times, *window, interval_s, what="settle"):
            flags.append(gap)
        inside = [c["at"] for c in calls if c["end_s"] > window[0] and c["start_s"] < window[1]]
        if inside:
            flags.append(
                f"the runner's /stats call ({', '.join(inside)}) fell in the settle window"
            )
    return flags
