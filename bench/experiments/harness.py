"""What the service and control experiments share: joining a memory group, phases, evidence.

Both experiments start a measured program inside a fresh memory group, pinned to the cores
the harness leaves free, sample its anonymous memory on one clock and mark phases on it, and
stop with what they measured when interrupted. The proof of the allocator inside the running
processes is bench.allocators.verification; the machine's CPU account over a repeat is
bench.measure.machine.MachineMeter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.errors import UserError
from bench.measure.groups import MemoryGroup
from bench.measure.sampler import Sample
from service.process.childenv import child_setup

__all__ = [
    "CorePlan",
    "PhaseLog",
    "ExperimentError",
    "Interrupted",
    "RepeatFailed",
    "core_plan",
    "memory_rows",
    "preexec_for",
]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) in the middle of a repeat, carrying the rows it measured so far."""

    def __init__(
        self,
        *,
        experiment: str,
        memory: list[dict[str, Any]],
        requests: list[dict[str, Any]] | None = None,
        phases: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__("interrupted")
        self.experiment = experiment
        self.memory = memory
        self.requests = requests or []
        self.phases = phases or []


class ExperimentError(UserError):
    """One allocator's experiment failed; the message is the reason recorded in the manifest."""


class RepeatFailed(ExperimentError):
    """A repeat that failed part-way after measuring something (a worker died under load).

    The allocator fails with the message as its reason, but what the repeat measured up to
    the fault is evidence of it: `kept` (the experiment's repeat record, its summary flagged
    with the fault) is stored like any repeat's.
    """

    def __init__(self, message: str, *, kept: Any) -> None:
        super().__init__(message)
        self.kept = kept


@dataclass(frozen=True)
class CorePlan:
    """Which cores the measured program gets and which the harness (load, sampler) keeps."""

    measured: set[int] | None
    harness: set[int] | None

    def as_record(self) -> dict[str, Any]:
        return {
            "service_cpus": sorted(self.measured) if self.measured else None,
            "harness_cpus": sorted(self.harness) if self.harness else None,
            "control_cpus": None,  # the control runs alone, on every core
        }


def core_plan(pin: bool) -> CorePlan:
    """Harness on the first usable core, the measured program on the rest (needs 2 or more)."""
    cores = sorted(os.sched_getaffinity(0))
    if not pin or len(cores) < 2:
        return CorePlan(None, None)
    return CorePlan(set(cores[1:]), {cores[0]})


def preexec_for(group: MemoryGroup, cpus: set[int] | None) -> Callable[[], None]:
    """A preexec_fn that joins the memory group (and the cores) before exec."""
    return child_setup(group.procs_file, cpus)


@dataclass
class PhaseLog:
    """Phase boundaries on the run's clock (seconds since origin), one list per repeat."""

    repeat: int
    entries: list[dict[str, Any]] = field(default_factory=list)

    def begin(self, phase: str, t_s: float) -> None:
        self.end(t_s)
        self.entries.append(
            {"repeat": self.repeat, "phase": phase, "start_s": round(t_s, 6), "end_s": None}
        )

    def end(self, t_s: float) -> None:
        if self.entries and self.entries[-1]["end_s"] is None:
            self.entries[-1]["end_s"] = round(t_s, 6)

    def phase_at(self, t_s: float) -> str | None:
        """The phase under way at a time of the run's clock (None before the first began)."""
        found = None
        for e in self.entries:
            if e["start_s"] <= t_s:
                found = e["phase"]
        return found

    def span(self, phase: str) -> tuple[float, float] | None:
        for e in self.entries:
            if e["phase"] == phase and e["end_s"] is not None:
                return e["start_s"], e["end_s"]
        return None


def memory_rows(
    samples: Iterable[Sample], *, experiment: str, allocator: str, repeat: int
) -> list[dict[str, Any]]:
    return [
        {
            "experiment": experiment,
            "allocator": allocator,
            "repeat": repeat,
            "t_s": s.t_s,
            "phase": s.phase,
            "anon_bytes": s.anon_bytes,
            "late_s": s.late_s,
        }
        for s in samples
    ]
