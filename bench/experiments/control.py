"""One repeat of the C++ control under one allocator, measured like the service.

The control program runs inside a fresh memory group, its anonymous memory sampled by the
same sampler at the spec's interval; its phases (fill, churn, idle) are placed on the
sampler's clock from the program's own CLOCK_MONOTONIC stamps.

It rests as long as the service (Spec.control_idle_s) and its settled memory is the median
over the same last service.settle_window_s of that rest, so settled means the same thing in
both experiments. Where the method departs from the study's for a repeat (the control rested
less than the service, or ran more threads than it had CPUs), the summary row says so in its
`flags`, for the article to report beside the numbers.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.allocators.registry import Allocator
from bench.experiments.control_program import ControlError, ControlResult, spec_arguments
from bench.experiments.control_run import run_control_once
from bench.experiments.harness import (
    ExperimentError,
    Interrupted,
    PhaseLog,
    memory_rows,
    preexec_for,
)
from bench.measure import runstats
from bench.measure.groups import ProcfsGroup, create_group
from bench.measure.machine import MachineMeter
from bench.measure.retention import Phases, table_rows
from bench.measure.sampler import Sampler
from bench.scratch import scratch_dir
from bench.spec import Spec
from service.retentionlog import read_lines

__all__ = ["ControlRepeat", "method_flags", "run_control_repeat", "settle_window"]


def settle_window(window_s: float, rest_s: float, measured_rest_s: float) -> float:
    """The window (s) the control's settled median is taken over.

    The service's window (window_s) whenever the control was given at least that much rest
    (rest_s), so both experiments settle alike; only a spec that gives the control a shorter
    rest clamps it, to the rest actually measured between the program's idle and done stamps.
    """
    if rest_s >= window_s:
        return window_s
    return round(max(0.0, min(window_s, measured_rest_s)), 6)


def method_flags(
    result: ControlResult, *, service_idle_s: float, service_window_s: float, window_s: float
) -> list[str]:
    """Where this repeat departs from the study's method, one short phrase each.

    - The control rested less than the service: its allocators had less time to return
      memory on their timers, so its settled value is not comparable with the service's
      (and with a rest shorter than the settle window, it settled over a shorter window).
    - More threads than CPUs: threads took turns, so allocs_per_s (per wall-second) counts
      waiting too; allocs_per_cpu_s does not.
    """
    flags = []
    if result.idle_s < service_idle_s:
        text = f"rested {result.idle_s:g} s, less than the service's {service_idle_s:g} s"
        if window_s < service_window_s:
            text += f" (settled over {window_s:g} s, not {service_window_s:g} s)"
        flags.append(text)
    if (over := result.oversubscription) is not None:
        flags.append(over)
    return flags


@dataclass(frozen=True)
class ControlRepeat:
    """What one repeat of the control adds to the run's tables and manifest."""

    control_row: dict[str, Any]
    summary_row: dict[str, Any]
    memory_rows: list[dict[str, Any]]
    phases: list[dict[str, Any]]
    evidence: dict[str, Any]
    retention_rows: list[dict[str, Any]]


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
    workload = spec_arguments(spec) | {"seed": spec.service.churn.seed + repeat}
    every_s = spec.service.retention_every_s
    scratch = scratch_dir("control") if every_s else None
    stats_log = scratch / "stats.jsonl" if scratch is not None else None
    try:
        try:
            result = run_control_once(
                binary,
                env=env,
                **workload,
                share=spec.control.share,
                timeout=spec.control.warmup_s + spec.control.seconds + spec.control_idle_s + 120,
                on_phase=_on_phase,
                on_start=_on_start,
                preexec=preexec_for(group, None),  # all cores: no load generator to keep apart
                stats_log=stats_log,
                stats_every_s=every_s or 2.0,
            )
        except ControlError as exc:
            raise ExperimentError(str(exc).splitlines()[0]) from None
        finally:
            end = time.monotonic() - origin
            log.end(end)
            samples = sampler.stop()
            group.close()
            stats_lines = _read_stats(stats_log)
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
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
    peak = runstats.peak(times, values, *churn) if churn else None
    settled = window = None
    if idle:
        window = settle_window(spec.service.settle_window_s, result.idle_s, idle[1] - idle[0])
        settled = runstats.settled(times, values, idle[1], window)
    cpu = meter.finish()
    late = max((s.late_s for s in samples), default=None)
    reason = runstats.disturbance(
        send_late_p99_ms=None,
        foreign_cpu_pct=cpu["foreign_cpu_pct"],
        sample_late_max_s=late,
        sample_interval_s=spec.service.sample_interval_s,
    )
    control_row = result.row(
        allocator=alloc.name,
        repeat=repeat,
        peak_anon_bytes=peak,
        settled_anon_bytes=settled,
        settle_window_s=window,
    )
    flags = method_flags(
        result,
        service_idle_s=spec.service.idle_floor_s,
        service_window_s=spec.service.settle_window_s,
        window_s=spec.service.settle_window_s if window is None else window,
    )
    summary = {
        "experiment": "control",
        "allocator": alloc.name,
        "repeat": repeat,
        "peak_anon_bytes": peak,
        "settled_anon_bytes": settled,
        "allocs_per_s": result.allocs_per_s,
        "allocs_per_cpu_s": result.allocs_per_cpu_s,
        **cpu,
        "disturbed": reason is not None,
        "disturbed_reason": reason,
        "flagged": bool(flags),
        "flags": "; ".join(flags) or None,
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
        _retention(stats_lines, result, origin, alloc.name, repeat),
    )


def _read_stats(path: Path | None) -> list[dict[str, Any]]:
    """The control's statistics log (none when it was not asked for or not written)."""
    if path is None or not path.is_file():
        return []
    return read_lines(str(path))


def _retention(
    lines: list[dict[str, Any]], result: ControlResult, origin: float, name: str, repeat: int
) -> list[dict[str, Any]]:
    """The control's rows of the retention table: its phases as the program stamped them
    (the churn is its load, the rest with the live set held its idle)."""
    mono = result.phase_mono_s
    if not lines or "churn" not in mono or "idle" not in mono:
        return []
    end = mono.get("done", max(float(line["t"]) for line in lines))
    phases = Phases(origin=origin, load_start=mono["churn"], load_end=mono["idle"], idle_end=end)
    return table_rows(
        {"control": lines}, phases, allocator=name, repeat=repeat, experiment="control"
    )
