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

Those concerns, and the workers' live sets, the idle probes and the retention logs, are the
repeat's watchers (bench.experiments.watcher, registered in bench.experiments.watchlist):
this module launches the service with their environment, tells them each phase and each
/stats reading, asks them every half second whether the service is lost, and hands what they
add at the end to the summary (bench.experiments.repeat_summary). The function stays long
because it is the one timeline of a repeat, read top to bottom as the phases run.
"""

from __future__ import annotations

import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
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
from bench.experiments.proof import SettingsMismatch, prove_replacements, prove_workers
from bench.experiments.repeat_summary import (
    ServiceRepeat,
    broken_app,
    method_flags,
    summarise_repeat,
)
from bench.experiments.watcher import Launch, Moment, RepeatEnd, Watcher, combine
from bench.experiments.watchlist import start_watchers
from bench.load.config import LoadConfig, LoadgenError
from bench.load.handle import start_loadgen, wait_loadgen
from bench.measure import runstats
from bench.measure.groups import ProcfsGroup, create_group
from bench.measure.machine import MachineMeter
from bench.measure.sampler import Sampler
from bench.progress import Progress
from bench.results.tables import TableError, read_table
from bench.run.signals import raise_if_interrupted
from bench.scratch import scratch_dir
from bench.spec import ServiceSpec, Spec
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


@dataclass(frozen=True)
class _Reading(Moment):
    """A Moment of /stats: answers are always there (empty when the call failed)."""

    answers: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Calls:
    """The runner's own requests to the service (/stats), on the run's clock: they must never
    fall inside the settle window, and a test checks that from this record."""

    origin: float
    spans: list[dict[str, Any]]

    def stats(self, svc: Any, at: str, *, timeout: float = 10.0) -> _Reading:
        """/stats from every worker as a Moment at the call's start, the call's span recorded
        (no answers when it failed)."""
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
        return _Reading(at, began, svc, answers)


class _ServiceLost(Exception):
    """A worker (or the supervisor) ended while the repeat ran; str() says which, how, when."""


def _check_service(svc: ServiceProcess, origin: float, phase: str, watchers: list[Watcher]) -> None:
    """Raise _ServiceLost when a watcher says the service is lost (a worker died that the
    memory limit does not explain, a replacement on another library) or the supervisor is
    gone itself."""
    for w in watchers:
        if problem := w.check(svc, phase):
            raise _ServiceLost(problem)
    if (code := svc.poll()) is not None:
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited ({code})"
        raise _ServiceLost(
            f"the service's supervisor {how} {time.monotonic() - origin:.1f} s into the run "
            f"({phase})"
        )


def _wait_until(deadline: float, progress_cb: Any = None, watch: Any = None) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
        raise_if_interrupted()
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
    quiet_s: float = 0.0,
    show: Any = None,
    watch: Any = None,
) -> float:
    """Wait through an idle that ends once memory has settled; the idle's length in s.

    After `least_s` (the allocator's return timers, timers.HORIZON_FACTOR times over, or
    the spec's floor),
    the idle ends as soon as the memory samples of the last `window_s` all sit within the
    settle band of their median and do not fall (runstats.settling, the rule the summary
    applies afterwards), and after `most_s` in any case. The window may not begin before
    `quiet_s` into the idle, when the runner's own /stats call at its start had ended: that
    call runs in the workers and calls the allocator, and a settled value read over it would
    be flagged. `idle_start` is a time.monotonic(); the samples' clock starts at `origin`.
    """
    start_s = idle_start - origin
    while True:
        elapsed = time.monotonic() - idle_start
        if elapsed >= most_s:
            return elapsed
        if elapsed >= least_s and elapsed - window_s >= quiet_s:
            idle = [x for x in sampler.samples if x.t_s >= start_s]
            now_s = start_s + elapsed
            fit = runstats.settling(
                [x.t_s for x in idle], [x.anon_bytes for x in idle], start_s, now_s, window_s
            )
            if fit.still_falling is False and fit.settle_time_s is not None:
                if fit.settle_time_s <= elapsed - window_s:
                    return elapsed
        time.sleep(min(0.5, max(0.0, most_s - elapsed)))
        raise_if_interrupted()
        if watch is not None:
            watch()
        if show is not None:
            show(most_s - (time.monotonic() - idle_start))


def _load_config(
    s: ServiceSpec, port: int, origin: float, cores: CorePlan, allocator: str, repeat: int
) -> LoadConfig:
    """The load generator's configuration for one repeat: started now, told t0 on stdin (it
    imports and builds its bodies while the service starts), on the harness's cores."""
    return LoadConfig.from_service_spec(
        s,
        base_url=f"http://127.0.0.1:{port}",
        origin=origin,
        start_on_stdin=True,
        cpus=sorted(cores.harness) if cores.harness else None,
        allocator=allocator,
        repeat=repeat,
        seed=s.churn.seed + repeat,
    )


def _load_result(
    loadgen: Any, out: Path, timeout_s: float, *, fault: str | None = None
) -> tuple[Any, list[dict[str, Any]]]:
    """The finished (or stopped) generator's summary and its request rows; ExperimentError
    when it failed (after `fault`, the reason the load was stopped, when there is one)."""
    try:
        summary = wait_loadgen(loadgen, timeout=timeout_s + 30)
    except LoadgenError as exc:
        raise ExperimentError(f"{fault + '; ' if fault else ''}load generator: {exc}") from None
    return summary, read_table(out, "requests").to_pylist()


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
    workdir = scratch_dir("run")
    proofs: list[dict[str, Any]] = []
    try:  # on the empty group: the memory limit holds everything the service starts
        watchers = start_watchers(Launch(s, alloc, repeat, origin, group, workdir, proofs))
    except BaseException:
        group.close()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    log = PhaseLog(repeat)
    sampler = Sampler(
        read=group.anon_bytes, interval_s=s.sample_interval_s, origin=origin, phase="start"
    )
    calls = _Calls(origin, [])
    svc = loadgen = ready = last = reclaim_how = summary = fault = least = None
    idle_stop: float | None = None  # when a settled idle's rule ended it (time.monotonic())
    app_errors: list[str] = []
    meter = MachineMeter()

    def tell(m: Moment) -> None:
        for w in watchers:
            w.moment(m)

    def read(at: str, timeout: float = 10.0) -> _Reading:
        """Every worker's /stats: a new worker proven on the allocator, the watchers told."""
        m = calls.stats(svc, at, timeout=timeout)
        proofs.extend(prove_replacements(m.answers, svc, group, alloc, repeat, proofs))
        tell(m)
        return m

    def begin(phase: str, t: float) -> None:
        """A phase begins at `t` (time.monotonic()): the samples, the log, the watchers."""
        sampler.phase = phase
        log.begin(phase, t - origin)
        tell(Moment(phase, t, svc))

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
            config = _load_config(s, port, origin, cores, alloc.name, repeat)
            out = workdir / "requests.arrow"
            loadgen = start_loadgen(config, out)
            sampler.start()  # from the launch on: the series shows the climb from nothing
            env = {**alloc.preload_env(), **knobs.probe_env(alloc.env)}
            for w in watchers:
                env.update(w.env())
            try:
                svc = start_service(
                    python=sys.executable,
                    workers=s.workers,
                    port=port,
                    env=env,
                    service_config=s.model_dump(mode="json"),
                    cgroup_procs=group.procs_file,
                    ready_timeout=60.0,
                    worker_log_dir=log_dir,
                    on_spawn=on_spawn,
                )
            except LaunchError as exc:
                note = "".join(w.startup_note() for w in watchers)
                raise ExperimentError(f"service did not start: {exc}{note}") from None
            if cores.measured:  # start-up had every core; the measured phases get their own
                pin_tree(svc.tree_pids(), cores.measured)
            ready = sampler.sample_now("start")  # the freshly started service

            # warm-up and load: one absolute schedule; the allocator is proven in every process
            # while the generator opens its connections
            start_at = time.monotonic() + LOADGEN_LEAD_S
            loadgen.go(start_at)
            at_ready = calls.stats(svc, "ready", timeout=30.0)
            if not at_ready.answers:
                raise ExperimentError("could not reach every worker for the allocator's proof")
            proofs += prove_workers(at_ready.answers, svc, group, alloc, repeat, workers=s.workers)
            tell(at_ready)
            running = svc  # the service, for the watch below (never None from here on)

            def watch() -> None:
                _check_service(running, origin, sampler.phase, watchers)

            try:
                t = start_at
                names = s.stage_names
                for stage in config.stages:
                    _wait_until(t, lambda left: show("waiting", left), watch)
                    if stage.phase != sampler.phase:  # the load's stages make one phase
                        begin(stage.phase, t)
                    if stage.phase == "idle":
                        break
                    t += stage.duration_s
                    shown = stage.phase
                    if s.stages and stage.load_stage is not None:
                        shown = f"load {names[stage.load_stage - 1]} at {stage.rate:g}/s"
                    _wait_until(t, lambda left, p=shown: show(p, left), watch)
                idle_start = t
                if sampler.phase != "idle":  # a silent idle: no stage of the generator's
                    begin("idle", idle_start)
                read("load_end")
                if s.idle_ends == "settled":
                    found = worker_timers(at_ready.answers)
                    least = min(timers.least_idle_s(found, s.idle_floor_s), s.idle_s)
                    wait_settled(
                        sampler,
                        idle_start,
                        origin,
                        least_s=least,
                        most_s=s.idle_s,
                        window_s=timers.flat_window_s(found, s.settle_window_s),
                        quiet_s=time.monotonic() - idle_start,
                        show=lambda left: show("idle", left),
                        watch=watch,
                    )
                    idle_stop = time.monotonic()  # the idle ends where the rule ended it
                    loadgen.finish()  # the probes end with the idle; in-flight ones complete
                else:
                    _wait_until(idle_start + s.idle_s, lambda left: show("idle", left), watch)
                summary, request_rows = _load_result(loadgen, out, s.request_timeout_s)
                # a settled idle ends at the rule's decision, so the summary reads the very
                # samples the decision read; a fixed one when the generator has finished
                log.end((idle_stop if idle_stop is not None else time.monotonic()) - origin)
                # after the last idle sample: nothing of ours touched the settle window
                read("idle_end")
                if group.can_reclaim:
                    begin("reclaim", time.monotonic())
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
                    summary, request_rows = _load_result(
                        loadgen, out, s.request_timeout_s, fault=fault
                    )
        finally:
            samples = sampler.stop()
            tell(Moment("end", time.monotonic(), svc))
            if loadgen is not None:
                loadgen.close()
            # A graceful stop, not a kill through the cgroup: the supervisor then reaps its
            # workers, so their CPU time reaches this process's children times, and the CPU
            # account of the run (ours against other processes') stays right.
            t_stop = time.monotonic()
            if svc is not None:
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

    end = RepeatEnd(
        origin=origin,
        log=log,
        fault=fault,
        request_rows=request_rows,
        loadgen=summary,
        samples=samples,
        sampler=sampler,
        ready=ready,
        last=last,
        reclaim_how=reclaim_how,
        calls=calls.spans,
        cpu=meter.finish(),
        teardown_s=teardown_s,
        app_errors=app_errors,
        idle_least_s=least,
        proofs=proofs,
    )
    done = summarise_repeat(spec, alloc, repeat, end, combine([w.finish(end) for w in watchers]))
    if fault is not None:
        raise RepeatFailed(
            f"repeat {repeat + 1}: {fault}; what it measured until then is kept, flagged",
            kept=done,
        )
    if broken := broken_app(request_rows, app_errors):
        raise RepeatFailed(f"repeat {repeat + 1}: {broken}", kept=done)
    return done
