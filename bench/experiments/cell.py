"""One cell of the study's matrix: one allocator's service repeat, or its control repeat.

A cell is the unit both ways of running a study share. The local executor (bench.run.local)
runs its cells one after another on this machine; the Dask one (bench.cluster.executor) runs
each on a benchmark host of its own. Either way `run_cell` does the same thing (drop the page
cache, run the experiment in its memory group, keep what a failed repeat measured) and returns
a `CellResult`: the rows it measured, each stamped with the host, and its contribution to the
allocator's manifest record. `merge_cell` folds a result into the run's rows and record; it is
the one place that decides what a repeat adds to the manifest, so a run folder reads the same
whichever way its cells ran.
"""

from __future__ import annotations

import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.allocators import knobs
from bench.allocators.registry import Allocator
from bench.experiments.harness import CorePlan, ExperimentError, RepeatFailed
from bench.measure import machine
from bench.progress import Progress
from bench.results.manifest import AllocatorRecord
from bench.results.records import now
from bench.results.tables import HOST_COLUMN, TABLES
from bench.spec import Spec

__all__ = [
    "Cell",
    "CellResult",
    "Experiment",
    "empty_rows",
    "host_name",
    "merge_cell",
    "run_cell",
    "stamp_host",
]

Experiment = Literal["service", "control"]
Status = Literal["ok", "failed", "skipped", "interrupted"]


def host_name() -> str:
    """The name rows carry as their host: the machine's hostname."""
    return socket.gethostname()


def empty_rows() -> dict[str, list[dict[str, Any]]]:
    """One empty row list per table of the data contract."""
    return {name: [] for name in TABLES}


def stamp_host(rows: dict[str, list[dict[str, Any]]], host: str) -> None:
    """Give every row that has no host yet this one (a row read back from a producer's
    table, the load generator's, holds a null host)."""
    for table in rows.values():
        for row in table:
            if row.get(HOST_COLUMN) is None:
                row[HOST_COLUMN] = host


@dataclass(frozen=True)
class Cell:
    """Which piece of the matrix: allocator, experiment, repeat, and the host kind (the index
    of the spec's `hosts:` entry it must run on; 0 when the spec names none)."""

    allocator: str
    experiment: Experiment
    repeat: int
    kind: int = 0

    @property
    def key(self) -> str:
        """A stable name, e.g. `glibc/service/r0` (`.../k1` on the second host kind)."""
        base = f"{self.allocator}/{self.experiment}/r{self.repeat}"
        return base if self.kind == 0 else f"{base}/k{self.kind}"

    def as_record(self) -> dict[str, Any]:
        return {
            "allocator": self.allocator,
            "experiment": self.experiment,
            "repeat": self.repeat,
            "kind": self.kind,
        }

    @staticmethod
    def from_record(record: dict[str, Any]) -> Cell:
        return Cell(
            allocator=str(record["allocator"]),
            experiment=record["experiment"],
            repeat=int(record["repeat"]),
            kind=int(record.get("kind") or 0),
        )


@dataclass
class CellResult:
    """What a cell measured and what it adds to its allocator's record.

    `entry` holds the record's per-repeat items (wall time, evidence, phases, load generator
    and sampler accounts, live set, memory limit), and `verified` what a verification on the
    cell's host found (its version, the knobs read back in the probe, the library it resolved
    to), when the cell verified the allocator first. `started`/`finished` are wall-clock Unix
    times: cells on one host must never overlap, and these show that they did not.
    """

    cell: Cell
    status: Status
    host: str
    started: float
    finished: float
    reason: str | None = None
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=empty_rows)
    entry: dict[str, Any] = field(default_factory=dict)
    verified: dict[str, Any] | None = None
    page_cache_dropped: bool | None = None
    #: the traceback of an exception that was no ExperimentError (a bug, a machine fault)
    traceback: str | None = None
    #: which attempt this was, and the Dask worker it ran on (a cluster run's retries)
    attempt: int = 1
    worker: str | None = None
    #: the failed attempts before this one, each recorded as a line of the manifest's cells
    earlier: list[CellResult] = field(default_factory=list)
    #: what the executor adds beyond the rows (a cluster host's fingerprint, confounds, logs)
    extras: dict[str, Any] = field(default_factory=dict)


def _service_entry(rep: Any, wall_s: float) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    entry = {
        "wall_s": round(wall_s, 3),
        "evidence": rep.evidence,
        "phases": rep.phases,
        "loadgen": rep.loadgen,
        "sampler": rep.sampler,
        "live_set": rep.live_set,
        "memory_limit": rep.memory_limit,
    }
    rows = {
        "memory": rep.memory_rows,
        "requests": rep.request_rows,
        "summary": [rep.summary_row],
        **rep.tables,  # the watchers' tables (restarts, retention)
    }
    return entry, rows


def run_cell(
    spec: Spec,
    alloc: Allocator,
    cell: Cell,
    *,
    cores: CorePlan,
    progress: Progress | None,
    log_dir: Path | None = None,
) -> CellResult:
    """Run one cell on this machine; its result, failed with the reason when it failed.

    Never raises for a failure of the experiment (an ExperimentError, or any exception: a
    bug or a machine fault in one allocator must not lose the rest); a repeat in which a
    worker died keeps what it measured. A service cell's workers write their own output into
    `log_dir` (bench.experiments.service; None: the service's temporary log). Ctrl-C
    (KeyboardInterrupt, Interrupted with the rows measured so far) rises to the caller, which
    knows what to keep.
    """
    host = host_name()
    started = time.time()
    result = CellResult(cell=cell, status="ok", host=host, started=started, finished=started)
    t0 = time.monotonic()
    try:
        if cell.experiment == "service":
            from bench.experiments.service import run_service_repeat

            if spec.machine.set_confounds:
                result.page_cache_dropped = machine.drop_caches()
            try:
                rep = run_service_repeat(
                    spec, alloc, cell.repeat, cores=cores, progress=progress, log_dir=log_dir
                )
            except RepeatFailed as failed:  # measured until a worker died: kept, flagged
                result.entry, result.rows = _service_entry(failed.kept, time.monotonic() - t0)
                raise
            result.entry, result.rows = _service_entry(rep, time.monotonic() - t0)
        else:
            from bench.experiments.control import run_control_repeat
            from bench.experiments.control_build import build_control

            binary: Path = build_control()
            if spec.machine.set_confounds:
                machine.drop_caches()
            if progress is not None:
                progress.update(
                    allocator=alloc.name,
                    experiment="control",
                    phase=f"repeat {cell.repeat + 1}/{spec.control.repeats}",
                    left_s=None,
                    anon_bytes=None,
                )
            t0 = time.monotonic()
            crep = run_control_repeat(spec, alloc, cell.repeat, binary=binary)
            result.entry = {
                "wall_s": round(time.monotonic() - t0, 3),
                "evidence": [crep.evidence],
                "phases": crep.phases,
            }
            result.rows = {
                "memory": crep.memory_rows,
                "control": [crep.control_row],
                "summary": [crep.summary_row],
                "retention": crep.retention_rows,
            }
    except ExperimentError as exc:
        if worker_knobs := getattr(exc, "knobs", None):  # a worker's settings differed
            result.entry["worker_knobs"] = worker_knobs
        result.status, result.reason = "failed", str(exc)
    except Exception as exc:  # a bug or a machine fault in one allocator must not lose the rest
        result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
        result.traceback = traceback.format_exc()  # kept in the cell's line, and said here
        print(f"allocstudy: {cell.key} failed:\n{result.traceback}", file=sys.stderr, flush=True)
    result.rows = {**empty_rows(), **result.rows}
    stamp_host(result.rows, host)
    result.finished = time.time()
    return result


def merge_cell(
    record: AllocatorRecord,
    rows: dict[str, list[dict[str, Any]]],
    result: CellResult,
    *,
    by_host: bool = False,
) -> None:
    """Fold a cell's result into the run's rows and its allocator's record.

    A failed cell fails its allocator with the cell's reason (what it measured is kept, as a
    failed repeat's is); a skipped one skips it. `by_host` (a cluster run): the version each
    host verified is kept apart. Timestamps of the record are the run's (records.now).
    """
    if result.verified is not None:
        v = result.verified
        if record.version is None:
            record.version = v.get("version")
        record.knobs = knobs.merge([v.get("knobs") or []], record.knobs)
        if v.get("timers") and not record.timers:
            record.timers = v["timers"]
        for key in ("library", "expected_library", "sha256"):
            if getattr(record, key) is None and v.get(key) is not None:
                setattr(record, key, v[key])
        if by_host:
            record.version_by_host = {
                **(record.version_by_host or {}),
                result.host: v.get("version"),
            }
    for name, new in result.rows.items():
        rows.setdefault(name, []).extend(new)
    entry = result.entry
    experiment = result.cell.experiment
    if "wall_s" in entry:
        record.wall_s[experiment].append(entry["wall_s"])
        record.evidence[experiment] += entry.get("evidence") or []
        record.phases[experiment] += entry.get("phases") or []
        if experiment == "service":
            record.knobs = knobs.merge(
                (e["knobs"] for e in entry.get("evidence") or [] if "knobs" in e), record.knobs
            )
            record.loadgen.append(entry.get("loadgen"))
            record.sampler.append(entry.get("sampler"))
            record.live_set += entry.get("live_set") or []
            if entry.get("memory_limit") is not None:  # counters, the workers it killed
                record.memory_limit = [*(record.memory_limit or []), entry["memory_limit"]]
    if worker_knobs := entry.get("worker_knobs"):
        record.knobs = knobs.merge(worker_knobs, record.knobs)
    if result.status in ("failed", "skipped"):
        record.status, record.reason, record.finished = result.status, result.reason, now()
