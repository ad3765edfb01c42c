"""One repeat of the service experiment under one allocator.

Timeline on one monotonic clock (t = 0 when the allocator's run begins): the service starts
inside a fresh memory group through the same launcher as `allocstudy serve`; the allocator is
proven in every process; the open-loop generator runs warm-up then load; the service rests
idle; a forced reclaim; a last sample. Memory is sampled all along.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stats
from bench.allocators import Allocator
from bench.loadgen import LoadConfig, LoadgenError, start_loadgen, wait_loadgen
from bench.measure import (
    CorePlan,
    ExperimentError,
    Interrupted,
    MachineMeter,
    PhaseLog,
    library_mapped,
    memory_rows,
)
from bench.memory import ProcfsGroup, create_group
from bench.progress import Progress
from bench.sampler import Sampler
from bench.spec import Spec
from bench.tables import TableError, read_table
from service.launcher import LaunchError, start_service

__all__ = ["ServiceRepeat", "free_port", "pin_tree", "run_service_repeat"]


@dataclass(frozen=True)
class ServiceRepeat:
    memory_rows: list[dict[str, Any]]
    request_rows: list[dict[str, Any]]
    summary_row: dict[str, Any]
    phases: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    loadgen: dict[str, Any]
    sampler: dict[str, Any]


#: Seconds between telling the (started, ready) load generator its t0 and t0: time to open its
#: keep-alive connections to every worker.
LOADGEN_LEAD_S = 0.3


def pin_tree(pids: list[int], cpus: set[int]) -> None:
    """Move every thread of the given processes onto `cpus` (affinity is per thread)."""
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass  # the thread ended meanwhile


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _evidence(
    svc: Any, group: Any, alloc: Allocator, repeat: int, *, workers: int, timeout: float
) -> list[dict[str, Any]]:
    """Proof from inside every process: /stats (dladdr) from each worker, maps for all."""
    expected = alloc.expected_library()
    try:
        per_worker = svc.stats_from_every_worker(timeout=timeout)
    except LaunchError as exc:
        raise ExperimentError(f"could not reach every worker: {exc}") from None
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
    return rows


def _rows_so_far(out: Path) -> list[dict[str, Any]]:
    """The rows an interrupted generator wrote on its way out (none if it wrote none)."""
    try:
        return read_table(out, "requests").to_pylist()
    except TableError:
        return []


def _worker_report(svc: Any) -> list[dict[str, Any]]:
    """How the load spread over the workers, and each one's live set and memory."""
    try:
        per_worker = svc.stats_from_every_worker(timeout=10.0)
    except LaunchError:
        return []
    keys = ("churn_calls", "live_count", "live_bytes", "pss_anon_bytes")
    return [{"pid": pid, **{k: st.get(k) for k in keys}} for pid, st in per_worker.items()]


def _wait_until(deadline: float, progress_cb: Any = None) -> None:
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, 0.5))
        if progress_cb is not None:
            progress_cb(deadline - time.monotonic())


def run_service_repeat(
    spec: Spec, alloc: Allocator, repeat: int, *, cores: CorePlan, progress: Progress | None
) -> ServiceRepeat:
    """Run one repeat; raise ExperimentError with the reason when it fails."""
    s = spec.service
    group = create_group(f"{alloc.name}-service-r{repeat}", mode=spec.machine.cgroup)
    workdir = Path(tempfile.mkdtemp(prefix="allocstudy-run-"))
    origin = time.monotonic()
    log = PhaseLog(repeat)
    sampler = Sampler(
        read=group.anon_bytes, interval_s=s.sample_interval_s, origin=origin, phase="start"
    )
    svc = None
    loadgen = None
    meter = MachineMeter()

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
            try:
                svc = start_service(
                    python=sys.executable,
                    workers=s.workers,
                    port=port,
                    env=alloc.preload_env(),
                    service_config=s.model_dump(mode="json"),
                    cgroup_procs=group.procs_file,
                    ready_timeout=60.0,
                )
            except LaunchError as exc:
                raise ExperimentError(f"service did not start: {exc}") from None
            if cores.measured:  # start-up had every core; the measured phases get their own
                pin_tree(svc.tree_pids(), cores.measured)
            if isinstance(group, ProcfsGroup):
                group.root_pid = svc.pid
            sampler.start()

            # warm-up and load: one absolute schedule; the allocator is proven in every process
            # while the generator opens its connections
            start_at = time.monotonic() + LOADGEN_LEAD_S
            loadgen.go(start_at)
            evidence = _evidence(svc, group, alloc, repeat, workers=s.workers, timeout=30.0)
            t = start_at
            for stage in config.stages:
                _wait_until(t, lambda left: show("waiting", left))
                sampler.phase = stage.phase
                log.begin(stage.phase, t - origin)
                t += stage.duration_s
                _wait_until(t, lambda left, p=stage.phase: show(p, left))
            idle_start = time.monotonic()
            sampler.phase = "idle"
            log.begin("idle", idle_start - origin)
            try:
                summary = wait_loadgen(loadgen)
            except LoadgenError as exc:
                raise ExperimentError(f"load generator: {exc}") from None
            request_rows = read_table(out, "requests").to_pylist()
            _wait_until(idle_start + s.idle_s, lambda left: show("idle", left))
            sampler.phase = "reclaim"
            log.begin("reclaim", time.monotonic() - origin)
            workers = _worker_report(svc)  # after settled: its requests do not touch the window
            reclaim_how = group.reclaim()  # synchronous: what it frees is gone when it returns
            last = sampler.sample_now("reclaim")
            log.end(time.monotonic() - origin)
        finally:
            samples = sampler.stop()
            if loadgen is not None:
                loadgen.close()
            # A graceful stop, not a kill through the cgroup: the supervisor then reaps its
            # workers, so their CPU time reaches this process's children times, and the CPU
            # account of the run (ours against other processes') stays right.
            t_stop = time.monotonic()
            if svc is not None:
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

    return _summarise(
        spec,
        alloc,
        repeat,
        samples=samples,
        request_rows=request_rows,
        log=log,
        evidence=evidence,
        summary=summary,
        sampler=sampler,
        reclaim_how=reclaim_how,
        last=last,
        cpu=meter.finish(),
        workers=workers,
        teardown_s=teardown_s,
    )


def _summarise(
    spec: Spec,
    alloc: Allocator,
    repeat: int,
    *,
    samples: list[Any],
    request_rows: list[dict[str, Any]],
    log: PhaseLog,
    evidence: list[dict[str, Any]],
    summary: Any,
    sampler: Sampler,
    reclaim_how: str,
    last: Any,
    cpu: dict[str, float | None],
    workers: list[dict[str, Any]],
    teardown_s: float,
) -> ServiceRepeat:
    s = spec.service
    times = [x.t_s for x in samples]
    values = [x.anon_bytes for x in samples]
    load = log.span("load")
    idle = log.span("idle")
    peak = stats.peak(times, values, *load) if load else None
    settled = stats.settled(times, values, idle[1], s.settle_window_s) if idle else None
    in_load = [r for r in request_rows if r["phase"] == "load"]
    ok = [r for r in in_load if 200 <= (r["status"] or 0) < 400 and r["done_s"] is not None]
    lat_ms = [(r["done_s"] - r["intended_s"]) * 1000 for r in ok]
    late_ms = [(r["sent_s"] - r["intended_s"]) * 1000 for r in in_load if r["sent_s"] is not None]
    late_p99 = stats.percentile(late_ms, 99)
    sample_late = max((x.late_s for x in samples), default=None)
    reason = stats.disturbance(
        send_late_p99_ms=late_p99,
        foreign_cpu_pct=cpu["foreign_cpu_pct"],
        sample_late_max_s=sample_late,
        sample_interval_s=s.sample_interval_s,
        start_late_s=summary.start_late_s,
    )
    row = {
        "experiment": "service",
        "allocator": alloc.name,
        "repeat": repeat,
        "peak_anon_bytes": peak,
        "settled_anon_bytes": settled,
        "reclaimed_anon_bytes": last.anon_bytes if last else None,
        "p50_ms": stats.percentile(lat_ms, 50),
        "p95_ms": stats.percentile(lat_ms, 95),
        "p99_ms": stats.percentile(lat_ms, 99),
        "achieved_rps": len(ok) / s.load_s,
        "requests": len(in_load),
        "errors": len(in_load) - len(ok),
        **cpu,
        "send_late_p99_ms": late_p99,
        "disturbed": reason is not None,
        "disturbed_reason": reason,
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
    }
    sampler_rec = {
        "repeat": repeat,
        "samples": len(samples),
        "cpu_s": sampler.cpu_s,
        "late_max_s": sample_late,
        "errors": sampler.errors[:10],
        "reclaim": reclaim_how,
        "teardown_s": round(teardown_s, 3),
    }
    return ServiceRepeat(
        memory_rows(samples, experiment="service", allocator=alloc.name, repeat=repeat),
        request_rows,
        row,
        log.entries,
        evidence,
        loadgen_rec,
        sampler_rec,
    )
