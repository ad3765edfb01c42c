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

import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.allocators import knobs, timers
from bench.allocators.registry import Allocator
from bench.experiments.harness import (
    CorePlan,
    ExperimentError,
    Interrupted,
    PhaseLog,
    RepeatFailed,
    memory_rows,
)
from bench.experiments.oomkills import LimitWatch
from bench.experiments.proof import (
    SettingsMismatch,
    prove_by_maps,
    prove_replacements,
    prove_workers,
)
from bench.experiments.repeat_summary import (
    ServiceRepeat,
    broken_app,
    method_flags,
    summarise_repeat,
)
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
from service.process.tree import pin_tree

__all__ = ["ServiceRepeat", "SettingsMismatch", "method_flags", "run_service_repeat"]


#: Seconds between telling the (started, ready) load generator its t0 and t0: time to open its
#: keep-alive connections to every worker.
LOADGEN_LEAD_S = 0.3


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
    "interface",  # a hosted app's, as the worker detected it (asgi or wsgi)
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


#: What each worker's `heap` (service.allocators.heap) reports: the program's own live heap.
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
    none); `heap_bytes` and `py_blocks` are every program's own live heap (service.allocators.heap).
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


def worker_timers(answers: dict[int, dict[str, Any]]) -> list[timers.Timer]:
    """The allocator's return timers as the first worker that read them back reports them
    (every worker runs the same library under the same environment)."""
    for pid in sorted(answers):
        if found := timers.from_report(answers[pid].get("knobs")):
            return found
    return []


def wait_settled(
    sampler: Sampler,
    idle_start: float,
    origin: float,
    *,
    least_s: float,
    most_s: float,
    window_s: float,
    show: Any = None,
    watch: Any = None,
) -> float:
    """Wait through an idle that ends once memory has settled; the idle's length in s.

    After `least_s` (the allocator's return timers, timers.HORIZON_FACTOR times over, or
    the spec's floor),
    the idle ends as soon as the memory samples of the last `window_s` all sit within the
    settle band of their median and do not fall (runstats.settling, the rule the summary
    applies afterwards), and after `most_s` in any case. `idle_start` is a time.monotonic();
    the samples' clock starts at `origin`.
    """
    start_s = idle_start - origin
    while True:
        elapsed = time.monotonic() - idle_start
        if elapsed >= most_s:
            return elapsed
        if elapsed >= least_s:
            idle = [x for x in sampler.samples if x.t_s >= start_s]
            now_s = start_s + elapsed
            fit = runstats.settling(
                [x.t_s for x in idle], [x.anon_bytes for x in idle], start_s, now_s, window_s
            )
            if fit.still_falling is False and fit.settle_time_s is not None:
                if fit.settle_time_s <= elapsed - window_s:
                    return elapsed
        time.sleep(min(0.5, max(0.0, most_s - elapsed)))
        if watch is not None:
            watch()
        if show is not None:
            show(most_s - (time.monotonic() - idle_start))


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
    least: float | None = None  # the least idle, when the idle ends once memory has settled
    idle_stop: float | None = None  # when that idle's rule ended it (time.monotonic())
    peak_reset: str | None = None  # the kernel high-water mark restarted as load began
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
                    worker_log_dir=log_dir,
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
            evidence = prove_workers(at_ready, svc, group, alloc, repeat, workers=s.workers)
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
                    if stage.phase == "load":  # the kernel's high-water mark: from here on
                        peak_reset = group.reset_peak()
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
                evidence += prove_replacements(at_load_end, svc, group, alloc, repeat, evidence)
                live_set.append(
                    _live_record("load_end", calls.spans[-1]["start_s"], at_load_end, repeat)
                )
                if s.idle_ends == "settled":
                    found = worker_timers(at_ready)
                    least = min(timers.least_idle_s(found, s.idle_floor_s), s.idle_s)
                    wait_settled(
                        sampler,
                        idle_start,
                        origin,
                        least_s=least,
                        most_s=s.idle_s,
                        window_s=timers.flat_window_s(found, s.settle_window_s),
                        show=lambda left: show("idle", left),
                        watch=watch,
                    )
                    idle_stop = time.monotonic()  # the idle ends where the rule ended it
                    loadgen.finish()  # the probes end with the idle; in-flight ones complete
                else:
                    _wait_until(idle_start + s.idle_s, lambda left: show("idle", left), watch)
                try:
                    summary = wait_loadgen(loadgen, timeout=s.request_timeout_s + 30)
                except LoadgenError as exc:
                    raise ExperimentError(f"load generator: {exc}") from None
                request_rows = read_table(out, "requests").to_pylist()
                # a settled idle ends at the rule's decision, so the summary reads the very
                # samples the decision read; a fixed one when the generator has finished
                log.end((idle_stop if idle_stop is not None else time.monotonic()) - origin)
                # after the last idle sample: nothing of ours touched the settle window
                at_idle_end = calls.stats(svc, "idle_end")
                live_set.append(
                    _live_record("idle_end", calls.spans[-1]["start_s"], at_idle_end, repeat)
                )
                evidence += prove_replacements(at_idle_end, svc, group, alloc, repeat, evidence)
                if limit.deaths:  # a replacement /stats never reached: its maps, at least
                    evidence += prove_by_maps(svc, alloc, repeat, evidence)
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
                app_errors = svc.app_errors(limit=4)
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

    done = summarise_repeat(
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
        idle_least_s=least,
        peak_reset=peak_reset,
    )
    if fault is not None:
        raise RepeatFailed(
            f"repeat {repeat + 1}: {fault}; what it measured until then is kept, flagged",
            kept=done,
        )
    if broken := broken_app(request_rows, app_errors):
        raise RepeatFailed(f"repeat {repeat + 1}: {broken}", kept=done)
    return done
