"""One repeat of the C++ control under one allocator, measured like the service.

The control program runs inside a fresh memory group, pinned like the service, its anonymous
memory sampled by the same sampler at the spec's interval; its phases (fill, churn, idle) are
placed on the sampler's clock from the program's own CLOCK_MONOTONIC stamps.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stats
from bench.allocators import Allocator
from bench.control import ControlError, run_control_once
from bench.measure import (
    ExperimentError,
    Interrupted,
    MachineMeter,
    PhaseLog,
    memory_rows,
    preexec_for,
)
from bench.memory import ProcfsGroup, create_group
from bench.sampler import Sampler
from bench.spec import Spec

__all__ = ["ControlRepeat", "run_control_repeat"]


@dataclass(frozen=True)
class ControlRepeat:
    control_row: dict[str, Any]
    summary_row: dict[str, Any]
    memory_rows: list[dict[str, Any]]
    phases: list[dict[str, Any]]
    evidence: dict[str, Any]


def run_control_repeat(
    spec: Spec,
    alloc: Allocator,
    repeat: int,
    *,
    binary: Path,
    on_phase: Any = None,
) -> ControlRepeat:
    """Run the control once; raise ExperimentError with the reason when it fails."""
    group = create_group(f"{alloc.name}-control-r{repeat}", mode=spec.machine.cgroup)
    origin = time.monotonic()
    sampler = Sampler(
        read=group.anon_bytes,
        interval_s=spec.service.sample_interval_s,
        origin=origin,
        phase="start",
    )
    log = PhaseLog(repeat)
    meter = MachineMeter()

    def _on_start(pid: int) -> None:
        if isinstance(group, ProcfsGroup):
            group.root_pid = pid
        sampler.start()

    def _on_phase(phase: str, _t: float) -> None:
        now = time.monotonic() - origin
        sampler.phase = phase
        log.begin(phase, now)
        if on_phase is not None:
            on_phase(phase, now)

    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **alloc.preload_env()}
    c = spec.control
    try:
        try:
            result = run_control_once(
                binary,
                env=env,
                threads=c.threads,
                live_bytes=spec.control_live_bytes,
                min_bytes=spec.service.churn.min_bytes,
                max_bytes=spec.service.churn.max_bytes,
                seconds=c.seconds,
                idle_s=spec.control_idle_s,
                seed=spec.service.churn.seed + repeat,
                timeout=c.seconds + spec.control_idle_s + 120,
                on_phase=_on_phase,
                on_start=_on_start,
                preexec=preexec_for(group, None),  # all cores: no load generator to keep apart
            )
        except ControlError as exc:
            raise ExperimentError(str(exc).splitlines()[0]) from None
        finally:
            end = time.monotonic() - origin
            log.end(end)
            samples = sampler.stop()
            group.close()
    except KeyboardInterrupt:
        raise Interrupted(
            experiment="control",
            memory=memory_rows(samples, experiment="control", allocator=alloc.name, repeat=repeat),
            phases=log.entries,
        ) from None
    # Re-place phase starts on the sampler clock from the program's own monotonic stamps.
    for entry in log.entries:
        mono = result.phase_mono_s.get(entry["phase"])
        if mono is not None:
            entry["start_s"] = round(mono - origin, 6)
    for prev, nxt in zip(log.entries, log.entries[1:], strict=False):
        prev["end_s"] = nxt["start_s"]
    expected = alloc.expected_library()
    if os.path.realpath(result.malloc_library) != expected:
        raise ExperimentError(
            f"control: malloc served by {result.malloc_library}, expected {expected}"
        )
    times = [s.t_s for s in samples]
    values = [s.anon_bytes for s in samples]
    churn = log.span("churn")
    idle = log.span("idle")
    peak = stats.peak(times, values, *churn) if churn else None
    settled = None
    if idle:
        window = min(spec.service.settle_window_s, idle[1] - idle[0]) or (idle[1] - idle[0])
        settled = stats.settled(times, values, idle[1], window)
    cpu = meter.finish()
    late = max((s.late_s for s in samples), default=None)
    reason = stats.disturbance(
        send_late_p99_ms=None,
        foreign_cpu_pct=cpu["foreign_cpu_pct"],
        sample_late_max_s=late,
        sample_interval_s=spec.service.sample_interval_s,
    )
    control_row = result.row(
        allocator=alloc.name, repeat=repeat, peak_anon_bytes=peak, settled_anon_bytes=settled
    )
    summary = {
        "experiment": "control",
        "allocator": alloc.name,
        "repeat": repeat,
        "peak_anon_bytes": peak,
        "settled_anon_bytes": settled,
        "allocs_per_s": result.allocs_per_s,
        **cpu,
        "disturbed": reason is not None,
        "disturbed_reason": reason,
    }
    evidence = {
        "repeat": repeat,
        "pid": result.pid,
        "role": "control",
        "malloc_library": result.malloc_library,
        "mapped": None,
    }
    return ControlRepeat(
        control_row,
        summary,
        memory_rows(samples, experiment="control", allocator=alloc.name, repeat=repeat),
        log.entries,
        evidence,
    )
