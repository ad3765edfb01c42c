"""A run on this machine: the local executor, and `run_study`, the study of a spec here.

The pipeline: resolve the allocators, open a run folder (or the one to resume), hold the
confounds (THP off, the cores planned), calibrate the rate when the spec asks, then drive the
plan's rounds through the local executor (bench.run.driver), which verifies an allocator
before its first repeat and runs each cell in turn (bench.experiments.cell.run_cell). A repeat
in which a worker died is kept, flagged, and fails its allocator, unless the spec's memory
limit killed it (then it is a result: the repeat goes on, bench.experiments.oomkills).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.allocators import knobs, timers
from bench.allocators.registry import Allocator, resolve_spec
from bench.allocators.verification import verify
from bench.errors import EXIT_SATURATED, UsageError, UserError
from bench.experiments.cell import Cell, CellResult, run_cell
from bench.experiments.harness import CorePlan, ExperimentError, core_plan
from bench.measure import machine
from bench.measure.groups import cgroup_support
from bench.progress import Progress
from bench.results.manifest import AllocatorRecord
from bench.results.records import confound_record, method_record, now, reclaim_support
from bench.run.driver import Outcome, drive
from bench.run.lifecycle import Run
from bench.run.rounds import plan_rounds
from bench.run.signals import sigterm_as_interrupt
from bench.spec import Spec

__all__ = [
    "CalibrationFailed",
    "LocalExecutor",
    "calibrated",
    "check_only",
    "only_allocators",
    "run_study",
    "start_allocator",
]


class CalibrationFailed(UserError):
    """The app did not hold even the ramp's lowest step: nothing can be measured at a rate
    it holds. Exit 5, as a saturated run; `record` is the ramp as measured."""

    exit_code = EXIT_SATURATED

    def __init__(self, message: str, record: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.record = record


def check_only(spec: Spec, only: list[str] | None) -> None:
    """UsageError when --only names an allocator the spec does not have (the A/A duplicate
    counts as one it has)."""
    if only and (unknown := sorted(set(only) - set(spec.allocator_names))):
        raise UsageError(
            f"--only names allocators the spec does not have: {', '.join(unknown)} "
            f"(spec has {', '.join(spec.allocator_names)})"
        )


def only_allocators(allocs: list[Allocator], spec: Spec, only: list[str] | None) -> list[Allocator]:
    """The spec's resolved allocators that --only keeps (all without it), checked first."""
    check_only(spec, only)
    return [a for a in allocs if a.name in only] if only else allocs


def start_allocator(alloc: Allocator, record: AllocatorRecord, progress: Progress) -> str:
    """Before an allocator's first repeat: skip it or verify it; its status."""
    record.started = now()
    if not alloc.available:
        record.status, record.reason, record.finished = "skipped", alloc.reason, now()
        progress.say(f"{alloc.name}: skipped: {alloc.reason}")
        return "skipped"
    check = verify(alloc)
    record.version = check.version
    record.knobs = knobs.merge([check.knobs])  # read back in the probe, before any repeat
    record.timers = timers.to_records(check.timers)  # when it gives memory back on its own
    if not check.ok:
        record.status, record.reason = "failed", f"verification: {check.reason}"
        record.finished = now()
        progress.say(f"{alloc.name}: failed: {record.reason}")
        return "failed"
    record.status = "running"
    return "running"


def calibrated(
    spec: Spec, run: Run, allocs: list[Allocator], cores: CorePlan, progress: Progress
) -> Spec:
    """The spec at the rate its calibration found (bench.experiments.calibrate), measured
    now on the first allocator that can be had, or taken from the manifest on --resume, so
    every repeat of a run is measured at one rate. The manifest's `calibration` records it."""
    from bench.experiments.calibrate import Calibration, calibrate, with_rate

    record = run.manifest.calibration
    if not record or record.get("rate") is None:
        first = next((a for a in allocs if a.available), None)
        if first is None:
            return spec  # nothing to measure here: every allocator will be skipped
        cal = spec.service.calibrate
        assert cal is not None
        progress.say(
            f"calibrating on {first.name}: {cal.steps} steps of {cal.step_s:g} s up to "
            f"{spec.service.rate:g} requests/s"
        )
        try:
            record = calibrate(spec, first, cores)
        except Calibration as failed:
            raise CalibrationFailed(str(failed), failed.record) from None
        run.manifest.calibration = record
        progress.say(
            f"calibration: held {record['found_rps']:g} requests/s; the study runs at "
            f"{record['rate']:g} ({record['fraction']:g} of it)"
        )
    return with_rate(spec, float(record["rate"]))


@dataclass
class LocalExecutor:
    """Cells run here, one after another: verification first, then `run_cell`."""

    spec: Spec
    allocs: dict[str, Allocator]
    cores: CorePlan
    progress: Progress
    logs: Path
    parallel: bool = False
    _seen: set[str] = field(default_factory=set)

    def begin(self, name: str, record: AllocatorRecord) -> str:
        return start_allocator(self.allocs[name], record, self.progress)

    def submit(self, cell: Cell) -> CellResult:
        result = run_cell(
            self.spec,
            self.allocs[cell.allocator],
            cell,
            cores=self.cores,
            progress=self.progress,
            log_dir=self.logs / f"{cell.allocator}-r{cell.repeat}",
        )
        return result

    def next_allocator(self, name: str) -> None:
        self.progress.index += 1

    def cancel(self, allocator: str) -> None:
        """Nothing queued: the driver stops taking the allocator's cells itself."""

    def stop(self) -> None:
        """Nothing to stop: Ctrl-C unwound the cell under way through its clean-ups."""

    def say(self, text: str) -> None:
        self.progress.say(text)


def run_study(
    spec: Spec,
    *,
    spec_path: Path,
    out: Path,
    only: list[str] | None = None,
    resume: bool = False,
    skip_control: bool = False,
    skip_service: bool = False,
) -> tuple[Path, Outcome]:
    """Run the study here; the run folder and its outcome. Raises UsageError for --only names
    the spec does not have, SpecChanged for a --resume whose run was made with another spec,
    RunFolderError when the results folder cannot be written, CalibrationFailed, and
    KeyboardInterrupt after recording an interrupted run."""
    allocs = only_allocators(resolve_spec(spec), spec, only)
    run = Run.open(spec, allocs, spec_path=spec_path, out=out, resume=resume)
    cores = core_plan(spec.machine.pin_cores)
    cg = cgroup_support() if spec.machine.cgroup == "auto" else None
    try:
        with (
            sigterm_as_interrupt(),
            machine.thp_disabled(spec.machine.set_confounds) as thp,
            Progress(total=len(allocs)) as progress,
        ):
            run.manifest.confounds = confound_record(spec, thp=thp, cg=cg, cores=cores)
            run.manifest.method = method_record(spec, **reclaim_support(cg.mode if cg else None))
            run.save()
            todo = [a for a in allocs if a.name not in run.kept]
            if spec.service.calibrate is not None and not skip_service:
                try:
                    spec = calibrated(spec, run, todo, cores, progress)
                except (CalibrationFailed, ExperimentError) as failed:
                    if (record := getattr(failed, "record", None)) is not None:
                        run.manifest.calibration = record
                    run.stop("incomplete")
                    raise
                run.save()
            rounds = plan_rounds(
                spec, [a.name for a in todo], skip_service=skip_service, skip_control=skip_control
            )
            progress.total = len(rounds) * len(todo)
            from bench.experiments.plan import unit_seconds

            progress.steps_s = unit_seconds(
                spec,
                [a.name for a in todo],
                len(rounds),
                skip_service=skip_service,
                skip_control=skip_control,
                unavailable=frozenset(a.name for a in todo if not a.available),
            )
            executor = LocalExecutor(
                spec, {a.name: a for a in todo}, cores, progress, run.folder / "logs"
            )
            outcome = drive(run, executor, rounds)
            run.manifest.confounds["cpu_pressure"]["avg10_end"] = getattr(
                machine.cpu_pressure(), "avg10", None
            )
    except KeyboardInterrupt:
        run.interrupt()  # again after the confounds were restored: it says whether they were
        raise
    run.complete()  # confounds.thp now says whether THP was restored
    return run.folder, outcome
