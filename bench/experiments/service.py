"""One repeat of the service experiment under one allocator.

Timeline on one monotonic clock (t = 0 when the allocator's run begins), memory sampled all
along from the moment the service is launched:
- start: the service starts inside a fresh memory group through the same launcher as
  `allocstudy serve`; once every worker is ready a sample is taken (the fresh service's
  memory, the base of the overhead ratio) and the allocator is proven in every process;
- warmup, load: the open-loop generator's schedule;
- idle: the spec's idle traffic (health probes at `idle_rate`, or silence); the workers'
  live payload is asked for (/stats) as idle begins, never inside the settle window;
- after the last idle sample: /stats again, then the forced reclaim where the memory group
  has one (cgroup v2 memory.reclaim) and a last sample; elsewhere no reclaim, recorded so.

A worker that dies meanwhile (a signal, the OOM killer; the supervisor reports it) ends the
repeat within a second: the load stops, what was measured up to then is summarised with the
death as its first flag, and RepeatFailed carries it to the runner, which keeps it and fails
the allocator. A replacement worker starts with nothing, so nothing after the death is
comparable; and the run does not spend the rest of the phases measuring it.

Under the spec's memory limit (`service.memory_limit_mb`, set on the fresh group before the
service joins it) a worker the kernel kills at the limit is the result being measured, not a
failure (bench.experiments.oomkills): it is recorded and flagged, the repeat goes on with
uvicorn's replacement, which is proven on the allocator like the first workers, and the
summary counts the kills.

A worker recycled after its limit of requests (the allocator's `service.max_requests`) is no
death but the feature under study: each restart becomes a row of the `restarts` table and its
replacement is proven on the allocator (bench.experiments.restarts).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.allocators import knobs
from bench.allocators.registry import Allocator
from bench.allocators.verification import library_mapped
from bench.experiments.harness import (
    CorePlan,
    ExperimentError,
    Interrupted,
    PhaseLog,
    RepeatFailed,
    memory_rows,
)
from bench.experiments.oomkills import LimitWatch
from bench.experiments.restarts import RestartWatch, restart_rows
from bench.load.config import LoadConfig, LoadgenError
from bench.load.handle import start_loadgen, wait_loadgen
from bench.measure import runstats
from bench.measure.groups import ProcfsGroup, create_group
from bench.measure.machine import MachineMeter, swap_bytes
from bench.measure.memlimit import LimitUnavailable, apply_limit, limit_bytes
from bench.measure.sampler import Sampler
from bench.progress import Progress
from bench.results.tables import TableError, read_table
from bench.spec import Spec
from service.launcher import LaunchError, ServiceProcess, free_port, start_service
from service.proctree import pin_tree

__all__ = [
    "ServiceRepeat",
    "SettingsMismatch",
    "broken_app",
    "method_flags",
    "run_service_repeat",
    "server_errors",
    "service_error_flag",
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
    restart_rows: list[dict[str, Any]]
    #: the memory limit's account of this repeat (None without a limit): what was set, the
    #: group's counters at every phase boundary, the workers it killed
    memory_limit: dict[str, Any] | None = None


#: Seconds between telling the (started, ready) load generator its t0 and t0: time to open its
#: keep-alive connections to every worker.
LOADGEN_LEAD_S = 0.3


class SettingsMismatch(ExperimentError):
    """A worker read back a variant's setting otherwise than asked; `knobs` holds every
    worker's judged read-back (bench.allocators.knobs.judge), for the manifest."""

    def __init__(self, message: str, knobs: list[list[dict[str, Any]]]) -> None:
        super().__init__(message)
        self.knobs = knobs


def _evidence(
    per_worker: dict[int, dict[str, Any]],
    svc: Any,
    group: Any,
    alloc: Allocator,
    repeat: int,
    *,
    workers: int,
) -> list[dict[str, Any]]:
    """Proof from inside every process: /stats (dladdr) from each worker, maps for all; and
    in each worker, the read-back of the variant's settings (a worker's `knobs`)."""
    expected = alloc.expected_library()
    asked = knobs.asked_settings(alloc.env)
    rows = []
    pids = set(group.pids()) | set(per_worker) | {svc.pid}
    for pid in sorted(pids):
        stats_ = per_worker.get(pid, {})
        served = stats_.get("malloc_library")
        rows.append(
            {
                "repeat": repeat,
                "pid": pid,
                "role": "supervisor"
                if pid == svc.pid
                else ("worker" if pid in per_worker else "helper"),
                "malloc_library": served,
                "mapped": library_mapped(pid, expected),
            }
        )
        if asked and pid in per_worker:
            rows[-1]["knobs"] = knobs.judge(asked, stats_.get("knobs"))
    bad = [
        r
        for r in rows
        if (r["malloc_library"] and os.path.realpath(r["malloc_library"]) != expected)
        or r["mapped"] is False
    ]
    if bad:
        r = bad[0]
        raise ExperimentError(
            f"pid {r['pid']} ({r['role']}) is not on {alloc.name}: malloc "
            f"served by {r['malloc_library']}, {expected} mapped: {r['mapped']}"
        )
    if len(per_worker) < workers:
        raise ExperimentError(f"only {len(per_worker)} of {workers} workers answered")
    judged = [r["knobs"] for r in rows if "knobs" in r]
    for r in rows:
        if mismatch := knobs.failure_reason(r.get("knobs", [])):
            raise SettingsMismatch(f"pid {r['pid']} (worker): {mismatch}", judged)
    return rows


REPLACEMENT = "replacement worker"


def _replacements(
    answers: dict[int, dict[str, Any]],
    svc: Any,
    group: Any,
    alloc: Allocator,
    repeat: int,
    proven: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Proof for workers that answered /stats and were not there before (uvicorn's
    replacements of workers the memory limit killed): the same proof as the first workers'
    (dladdr from inside, maps from outside); ExperimentError when one is not on the allocator."""
    known = {r["pid"] for r in proven}
    new = {pid: st for pid, st in answers.items() if pid not in known}
    if not new:
        return []
    rows = [r for r in _evidence(new, svc, group, alloc, repeat, workers=0) if r["pid"] in new]
    return [{**r, "role": REPLACEMENT} for r in rows]


def _replacements_by_maps(
    svc: Any, alloc: Allocator, repeat: int, proven: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A running worker still without proof at the end (its /stats never answered in time):
    the library in its maps, or ExperimentError when it is not there."""
    known = {r["pid"] for r in proven}
    expected = alloc.expected_library()
    rows = []
    for pid in svc.worker_pids():
        if pid in known:
            continue
        mapped = library_mapped(pid, expected)
        if mapped is False:
            raise ExperimentError(f"pid {pid} ({REPLACEMENT}) is not on {alloc.name}")
        rows.append(
            {
                "repeat": repeat,
                "pid": pid,
                "role": REPLACEMENT,
                "malloc_library": None,
                "mapped": mapped,
            }
        )
    return rows


def _rows_so_far(out: Path) -> list[dict[str, Any]]:
    """The rows an interrupted generator wrote on its way out (none if it wrote none)."""
    try:
        return read_table(out, "requests").to_pylist()
    except TableError:
        return []


_LIVE_KEYS = (
    "churn_calls",
    "live_count",
    "live_bytes",
    "long_count",
    "short_count",
    "pss_anon_bytes",
)


@dataclass
class _Calls:
    """The runner's own requests to the service (/stats), on the run's clock: they must never
    fall inside the settle window, and a test checks that from this record."""

    origin: float
    spans: list[dict[str, Any]]

    def stats(self, svc: Any, at: str, *, timeout: float = 10.0) -> dict[int, dict[str, Any]]:
        """/stats from every worker, the call's span recorded (empty when it failed)."""
        began = time.monotonic()
        try:
            answers = svc.stats_from_every_worker(timeout=timeout)
        except LaunchError:
            answers = {}
        self.spans.append(
            {
                "at": at,
                "start_s": round(began - self.origin, 6),
                "end_s": round(time.monotonic() - self.origin, 6),
                "ok": bool(answers),
            }
        )
        return answers


#: What each worker's `heap` (service.heap) reports: the program's own live heap.
_HEAP_KEYS = ("malloc_in_use_bytes", "malloc_source", "python_blocks", "gc_objects", "gc_counts")


def _total(rows: list[dict[str, Any]], key: str) -> int | None:
    """The sum of one count over the workers; None unless every worker reported it (a sum
    over some of them would pass for the service's)."""
    values = [r.get(key) for r in rows]
    if not values or any(v is None for v in values):
        return None
    return int(sum(values))


def _live_record(
    at: str, t_s: float, per_worker: dict[int, dict[str, Any]], repeat: int
) -> dict[str, Any]:
    """The workers' live sets and live heaps at one moment: per worker, and the totals.

    `live_bytes` is the synthetic service's live payload (None from a hosted app, which has
    none); `heap_bytes` and `py_blocks` are every program's own live heap (service.heap).
    """
    rows = [
        {
            "pid": pid,
            **{k: st.get(k) for k in _LIVE_KEYS},
            **{k: (st.get("heap") or {}).get(k) for k in _HEAP_KEYS},
        }
        for pid, st in per_worker.items()
    ]
    sources = {r["malloc_source"] for r in rows if r["malloc_source"]}
    return {
        "repeat": repeat,
        "at": at,
        "t_s": round(t_s, 3),
        "live_bytes": _total(rows, "live_bytes"),
        "heap_bytes": _total(rows, "malloc_in_use_bytes"),
        "heap_source": ", ".join(sorted(sources)) or None,
        "py_blocks": _total(rows, "python_blocks"),
        "workers": rows,
    }


class _ServiceLost(Exception):
    """A worker (or the supervisor) ended while the repeat ran; str() says which, how, when."""


def _check_service(
    svc: ServiceProcess, origin: float, phase: str, limit: LimitWatch | None = None
) -> None:
    """Raise _ServiceLost when the supervisor reported a dead worker or is gone itself
    (under a memory limit, a worker the limit killed is recorded by `limit` instead)."""
    exits = svc.worker_exits()
    if gone := (limit.sort(exits, phase) if limit is not None else exits):
        raise _ServiceLost(
            "; ".join(
                f"worker {g.pid} {g.how()} {g.noticed - origin:.1f} s into the run ({phase})"
                for g in gone
            )
        )
    if (code := svc.poll()) is not None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"
        raise _ServiceLost(
            f"the service's supervisor {how} {time.monotonic() - origin:.1f} s into the run "
            f"({phase})"
        )


def _wait_until(deadline: float, progress_cb: Any = None, watch: Any = None) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
        if watch is not None:
            watch()
        if progress_cb is not None:
            progress_cb(deadline - time.monotonic())


def run_service_repeat(
    spec: Spec,
    alloc: Allocator,
    repeat: int,
    *,
    cores: CorePlan,
    progress: Progress | None,
    log_dir: Path | None = None,
) -> ServiceRepeat:
    """Run one repeat; raise ExperimentError with the reason when it fails.

    `log_dir`: where each worker's own output goes (a hosted app's prints and tracebacks),
    one file per worker, kept with the run; None keeps it in the service's temporary log.
    """
    s = spec.service_for(alloc.name)  # the spec's service, with this allocator's recycling
    group = create_group(f"{alloc.name}-service-r{repeat}", mode=spec.machine.cgroup)
    origin = time.monotonic()
    limit = LimitWatch(group.mode, group.path, limit_bytes(s.memory_limit_mb), origin)
    applied = None
    if limit.limit is not None:  # on the empty group: everything the service starts is held
        try:
            applied = apply_limit(group.mode, group.path, limit.limit, swap_bytes=swap_bytes)
        except LimitUnavailable as exc:
            group.close()
            raise ExperimentError(str(exc)) from None
    limit.snapshot("launch")
    workdir = Path(tempfile.mkdtemp(prefix="allocstudy-run-"))
    log = PhaseLog(repeat)
    sampler = Sampler(
        read=group.anon_bytes, interval_s=s.sample_interval_s, origin=origin, phase="start"
    )
    calls = _Calls(origin, [])
    live_set: list[dict[str, Any]] = []
    svc = None
    loadgen = None
    meter = MachineMeter()
    ready = last = None
    reclaim_how = None
    summary = None
    fault: str | None = None
    recycled = RestartWatch(alloc.expected_library(), repeat)
    restarts: list[Any] = []
    app_errors: list[str] = []

    def show(phase: str, left: float | None) -> None:
        if progress is None:
            return
        prog = loadgen.progress() if loadgen is not None else None
        latest = sampler.latest
        progress.update(
            allocator=alloc.name,
            experiment="service",
            phase=phase,
            left_s=left,
            anon_bytes=latest.anon_bytes if latest else None,
            rate=prog.rate_rps if prog else None,
            p99_ms=prog.p99_ms if prog else None,
        )

    def on_spawn(pid: int) -> None:
        if isinstance(group, ProcfsGroup):  # without a cgroup the tree is found from its root
            group.root_pid = pid

    try:
        try:
            log.begin("start", 0.0)
            show("start", None)
            # The generator imports and builds its bodies while the service starts; it opens
            # its connections only once told when t0 is.
            port = free_port()
            config = LoadConfig.from_service_spec(
                s,
                base_url=f"http://127.0.0.1:{port}",
                origin=origin,
                start_on_stdin=True,
                cpus=sorted(cores.harness) if cores.harness else None,
                allocator=alloc.name,
                repeat=repeat,
                seed=s.churn.seed + repeat,
            )
            out = workdir / "requests.arrow"
            loadgen = start_loadgen(config, out)
            sampler.start()  # from the launch on: the series shows the climb from nothing
            try:
                svc = start_service(
                    python=sys.executable,
                    workers=s.workers,
                    port=port,
                    env={**alloc.preload_env(), **knobs.probe_env(alloc.env)},
                    service_config=s.model_dump(mode="json"),
                    cgroup_procs=group.procs_file,
                    ready_timeout=60.0,
                    **({"worker_log_dir": log_dir} if log_dir is not None else {}),  # TODO merge
                    on_spawn=on_spawn,
                )
            except LaunchError as exc:
                raise ExperimentError(
                    f"service did not start: {exc}{limit.startup_note()}"
                ) from None
            if cores.measured:  # start-up had every core; the measured phases get their own
                pin_tree(svc.tree_pids(), cores.measured)
            ready = sampler.sample_now("start")  # the freshly started service

            # warm-up and load: one absolute schedule; the allocator is proven in every process
            # while the generator opens its connections
            start_at = time.monotonic() + LOADGEN_LEAD_S
            loadgen.go(start_at)
            at_ready = calls.stats(svc, "ready", timeout=30.0)
            if not at_ready:
                raise ExperimentError("could not reach every worker for the allocator's proof")
            evidence = _evidence(at_ready, svc, group, alloc, repeat, workers=s.workers)
            live_set.append(_live_record("ready", calls.spans[-1]["start_s"], at_ready, repeat))
            running = svc  # the service, for the watch below (never None from here on)

            def watch() -> None:
                _check_service(running, origin, sampler.phase, limit)
                if problem := recycled.check(running.restarts()):
                    raise _ServiceLost(problem)

            try:
                t = start_at
                for stage in config.stages:
                    _wait_until(t, lambda left: show("waiting", left), watch)
                    sampler.phase = stage.phase
                    log.begin(stage.phase, t - origin)
                    limit.snapshot(stage.phase)
                    if stage.phase == "idle":
                        break
                    t += stage.duration_s
                    _wait_until(t, lambda left, p=stage.phase: show(p, left), watch)
                idle_start = t
                if sampler.phase != "idle":  # a silent idle: no stage of the generator's
                    sampler.phase = "idle"
                    log.begin("idle", idle_start - origin)
                    limit.snapshot("idle")
                at_load_end = calls.stats(svc, "load_end")
                evidence += _replacements(at_load_end, svc, group, alloc, repeat, evidence)
                live_set.append(
                    _live_record("load_end", calls.spans[-1]["start_s"], at_load_end, repeat)
                )
                idle_end = idle_start + s.idle_s
                _wait_until(idle_end, lambda left: show("idle", left), watch)
                try:
                    summary = wait_loadgen(loadgen, timeout=s.request_timeout_s + 30)
                except LoadgenError as exc:
                    raise ExperimentError(f"load generator: {exc}") from None
                request_rows = read_table(out, "requests").to_pylist()
                log.end(time.monotonic() - origin)
                # after the last idle sample: nothing of ours touched the settle window
                at_idle_end = calls.stats(svc, "idle_end")
                live_set.append(
                    _live_record("idle_end", calls.spans[-1]["start_s"], at_idle_end, repeat)
                )
                evidence += _replacements(at_idle_end, svc, group, alloc, repeat, evidence)
                if limit.deaths:  # a replacement /stats never reached: its maps, at least
                    evidence += _replacements_by_maps(svc, alloc, repeat, evidence)
                if group.can_reclaim:
                    sampler.phase = "reclaim"
                    log.begin("reclaim", time.monotonic() - origin)
                    limit.snapshot("reclaim")
                    reclaim_how = group.reclaim()  # synchronous: what it frees is gone on return
                    last = sampler.sample_now("reclaim")
                    log.end(time.monotonic() - origin)
                else:
                    reclaim_how = group.reclaim()  # says why there is none
                watch()  # a death in the last moments counts too
            except _ServiceLost as lost:
                fault = str(lost)
                log.end(time.monotonic() - origin)
                if summary is None:  # the load still runs: stop it, keep its rows so far
                    loadgen.stop()
                    try:
                        summary = wait_loadgen(loadgen, timeout=s.request_timeout_s + 30)
                    except LoadgenError as exc:
                        raise ExperimentError(f"{fault}; load generator: {exc}") from None
                    request_rows = read_table(out, "requests").to_pylist()
            workers = live_set[-1]["workers"]
        finally:
            samples = sampler.stop()
            limit.snapshot("end")
            if loadgen is not None:
                loadgen.close()
            # A graceful stop, not a kill through the cgroup: the supervisor then reaps its
            # workers, so their CPU time reaches this process's children times, and the CPU
            # account of the run (ours against other processes') stays right.
            t_stop = time.monotonic()
            if svc is not None:
                restarts = svc.restarts()  # before the stop removes the service's log
                app_errors = svc.app_errors(limit=4) if hasattr(svc, "app_errors") else []
                svc.stop()
            group.close()
            teardown_s = time.monotonic() - t_stop
    except KeyboardInterrupt:
        # keep what this repeat measured; the runner stores it with the allocator incomplete
        raise Interrupted(
            experiment="service",
            memory=memory_rows(samples, experiment="service", allocator=alloc.name, repeat=repeat),
            requests=_rows_so_far(out) if loadgen is not None else [],
            phases=log.entries,
        ) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    done = _summarise(
        spec,
        alloc,
        repeat,
        restarts=restart_rows(
            restarts,
            origin=origin,
            allocator=alloc.name,
            repeat=repeat,
            request_rows=request_rows,
            phase_at=log.phase_at,
        ),
        fault=fault,
        samples=samples,
        request_rows=request_rows,
        log=log,
        evidence=evidence,
        summary=summary,
        limit=limit,
        applied=applied,
        sampler=sampler,
        reclaim_how=reclaim_how,
        ready=ready,
        last=last,
        cpu=meter.finish(),
        workers=workers,
        live_set=live_set,
        calls=calls.spans,
        teardown_s=teardown_s,
        evidence_extra=recycled.evidence,
        app_errors=app_errors,
    )
    if fault is not None:
        raise RepeatFailed(
            f"repeat {repeat + 1}: {fault}; what it measured until then is kept, flagged",
            kept=done,
        )
    if broken := broken_app(request_rows, app_errors):
        raise RepeatFailed(f"repeat {repeat + 1}: {broken}", kept=done)
    return done


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


def _summarise(
    spec: Spec,
    alloc: Allocator,
    repeat: int,
    *,
    restarts: tuple[list[dict[str, Any]], int],
    fault: str | None,
    samples: list[Any],
    request_rows: list[dict[str, Any]],
    log: PhaseLog,
    evidence: list[dict[str, Any]],
    summary: Any,
    limit: LimitWatch,
    applied: dict[str, Any] | None,
    sampler: Sampler,
    reclaim_how: str | None,
    ready: Any,
    last: Any,
    cpu: dict[str, float | None],
    workers: list[dict[str, Any]],
    live_set: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    teardown_s: float,
    evidence_extra: list[dict[str, Any]],
    app_errors: list[str],
) -> ServiceRepeat:
    s = spec.service_for(alloc.name)
    restart_table, during_restart = restarts
    times = [x.t_s for x in samples]
    values = [x.anon_bytes for x in samples]
    load = log.span("load")
    idle = log.span("idle")
    peak = runstats.peak(times, values, *load) if load else None
    settled = runstats.settled(times, values, idle[1], s.settle_window_s) if idle else None
    in_load = [r for r in request_rows if r["phase"] == "load"]
    lat_ms, failed = runstats.charged_latencies_ms(in_load, s.request_timeout_s)
    late_ms = [(r["sent_s"] - r["intended_s"]) * 1000 for r in in_load if r["sent_s"] is not None]
    late_p99 = runstats.percentile(late_ms, 99)
    sample_late = max((x.late_s for x in samples), default=None)
    reason = runstats.disturbance(
        send_late_p99_ms=late_p99,
        foreign_cpu_pct=cpu["foreign_cpu_pct"],
        sample_late_max_s=sample_late,
        sample_interval_s=s.sample_interval_s,
        start_late_s=summary.start_late_s,
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
        calls=calls,
    )
    if server := service_error_flag(request_rows, app_errors):
        flags.insert(0, server)  # says why those requests failed
    flags[:0] = limit.flags()  # before the failed requests they may have caused
    if fault is not None:  # first: every other flag may be its consequence
        flags.insert(0, fault)
    live = {r["at"]: r["live_bytes"] for r in live_set}
    heap = {r["at"]: r.get("heap_bytes") for r in live_set}
    blocks = {r["at"]: r.get("py_blocks") for r in live_set}
    ready_anon = ready.anon_bytes if ready is not None else None
    in_load_samples = [x.anon_bytes for x in samples if x.phase == "load"]
    row = {
        "experiment": "service",
        "allocator": alloc.name,
        "repeat": repeat,
        "peak_anon_bytes": peak,
        "settled_anon_bytes": settled,
        "reclaimed_anon_bytes": last.anon_bytes if last else None,
        "p50_ms": runstats.percentile(lat_ms, 50),
        "p95_ms": runstats.percentile(lat_ms, 95),
        "p99_ms": runstats.percentile(lat_ms, 99),
        "achieved_rps": (len(in_load) - failed) / s.load_s,
        "requests": len(in_load),
        "errors": failed,
        **cpu,
        "send_late_p99_ms": late_p99,
        "disturbed": reason is not None,
        "disturbed_reason": reason,
        "ready_anon_bytes": ready_anon,
        "ready_live_bytes": live.get("ready"),
        "load_end_live_bytes": live.get("load_end"),
        "idle_end_live_bytes": live.get("idle_end"),
        "overhead_peak": runstats.overhead_ratio(
            peak, ready_anon, live.get("load_end"), live.get("ready")
        ),
        "overhead_settled": runstats.overhead_ratio(
            settled, ready_anon, live.get("idle_end"), live.get("ready")
        ),
        "given_back_share": runstats.given_back_share(peak, settled),
        **limit.summary(),
        "flagged": bool(flags),
        "flags": "; ".join(flags) if flags else None,
        "restarts": len(restart_table),
        "requests_during_restart": during_restart,
        "heap_source": next((r["heap_source"] for r in live_set if r.get("heap_source")), None),
        "ready_heap_bytes": heap.get("ready"),
        "load_end_heap_bytes": heap.get("load_end"),
        "idle_end_heap_bytes": heap.get("idle_end"),
        "ready_py_blocks": blocks.get("ready"),
        "load_end_py_blocks": blocks.get("load_end"),
        "idle_end_py_blocks": blocks.get("idle_end"),
        "load_end_anon_bytes": in_load_samples[-1] if in_load_samples else None,
    }
    loadgen_rec = {
        "repeat": repeat,
        "per_worker": workers,
        "send_late_p99_ms": late_p99,
        "cpu_pct": summary.cpu_pct,
        "cpu_s": summary.cpu_s,
        "start_late_s": summary.start_late_s,
        "error_kinds": summary.error_kinds,
        "loop": summary.loop,
        "cpus": summary.cpus,
        "stages": [st.model_dump() for st in summary.stages],
    }
    sampler_rec = {
        "repeat": repeat,
        "samples": len(samples),
        "cpu_s": sampler.cpu_s,
        "late_max_s": sample_late,
        "errors": sampler.errors[:10],
        "reclaim": reclaim_how,
        "reclaim_ran": last is not None,
        "stats_calls": calls,
        "teardown_s": round(teardown_s, 3),
    }
    return ServiceRepeat(
        memory_rows(samples, experiment="service", allocator=alloc.name, repeat=repeat),
        request_rows,
        row,
        log.entries,
        evidence + evidence_extra,
        loadgen_rec,
        sampler_rec,
        live_set,
        restart_table,
        limit.record(repeat, applied),
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
