"""One run's life, whichever executor runs its cells: open or resume, merge, interrupt, complete.

`Run.open` makes a new run folder or takes the incomplete one --resume continues: a resumed
run keeps its finished allocators (rows and records) and, when it was a cluster run, every
cell that finished ok of the others (a cluster run merges nothing of a cell that did not
finish); whatever else an unfinished allocator left is dropped and measured again. `merge`
takes a finished cell in (its line in the manifest's `cells`, its rows, its allocator's
record), `interrupt` marks what was under way incomplete (keeping the rows an interrupted
local repeat measured), `complete` ends the run and moves `latest`. The manifest is saved
after each, so an interrupted or failed run keeps everything measured so far. Every time it
records is on one clock (bench.results.records.now).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.allocators.registry import Allocator
from bench.experiments.cell import Cell, CellResult, empty_rows, host_name, merge_cell, stamp_host
from bench.experiments.harness import Interrupted
from bench.results.manifest import (
    FINISHED,
    AllocatorRecord,
    Manifest,
    load_manifest,
)
from bench.results.records import allocator_record, base_manifest, cell_record, now, spec_record
from bench.results.resume import run_to_resume
from bench.results.rundir import new_run_dir, read_rows, save_run, set_latest
from bench.spec import Spec

__all__ = ["CellKey", "Run", "cell_key", "resumable_run"]

CellKey = tuple[str, str, int, int]


def cell_key(cell: Cell) -> CellKey:
    return (cell.allocator, cell.experiment, cell.repeat, cell.kind)


def resumable_run(spec: Spec, *, spec_path: Path, out: Path) -> Path | None:
    """The incomplete run of this spec that --resume continues, or None (said on stderr: the
    run then starts anew). SpecChanged when the newest incomplete run had another spec."""
    run_dir = run_to_resume(
        out,
        spec_name=spec.name,
        spec_hash=spec.spec_hash,
        spec=spec_record(spec),
        spec_path=spec_path,
    )
    if run_dir is None:
        print(
            f"allocstudy: nothing to resume for {spec.name} (no incomplete run with this "
            "spec hash); starting a new run",
            file=sys.stderr,
            flush=True,
        )
    return run_dir


@dataclass
class Run:
    """A run folder and what is kept of it: its manifest, its rows, the cells done."""

    folder: Path
    manifest: Manifest
    rows: dict[str, list[dict[str, Any]]]
    #: cells of unfinished allocators that a resumed cluster run keeps (done, not run again)
    done_cells: dict[str, set[CellKey]] = field(default_factory=dict)
    #: the allocators kept whole from the interrupted run (their status: ok, failed, skipped)
    kept: dict[str, str] = field(default_factory=dict)
    #: what an executor notes of each result before it is merged (a cluster host's account)
    on_merge: list[Callable[[CellResult], None]] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        spec: Spec,
        allocs: list[Allocator],
        *,
        spec_path: Path,
        out: Path,
        resume: bool,
        resolved_here: bool = True,
    ) -> Run:
        """The run to measure `allocs` into. `resolved_here` False (a cluster run's client):
        the allocators' records hold what the spec says; the hosts fill in the rest."""
        folder = resumable_run(spec, spec_path=spec_path, out=out) if resume else None
        if folder is None:
            folder = new_run_dir(out, spec.name)
            run = cls(folder, base_manifest(spec, spec_path, folder), empty_rows())
        else:
            run = cls(folder, load_manifest(folder), read_rows(folder))
            run.manifest.status = "running"
            run._keep_what_finished()
        records = {r.name: r for r in run.manifest.allocators}
        for alloc in allocs:
            rec = records.get(alloc.name)
            if rec is not None and rec.status in FINISHED:
                run.kept[alloc.name] = rec.status
            elif rec is not None and alloc.name in run.done_cells:
                rec.status, rec.reason = "running", None
            else:
                records[alloc.name] = allocator_record(alloc, resolved_here=resolved_here)
        names = [a.name for a in allocs]
        run.manifest.allocators = [records[n] for n in names] + [
            r for n, r in records.items() if n not in names
        ]
        return run

    def _keep_what_finished(self) -> None:
        finished = {a.name for a in self.manifest.allocators if a.status in FINISHED}
        if self.manifest.cluster is not None:
            for line in self.manifest.cells or []:
                if line.status == "ok" and line.allocator not in finished:
                    key = cell_key(Cell.from_record(line.model_dump()))
                    self.done_cells.setdefault(line.allocator, set()).add(key)
        for name in {a.name for a in self.manifest.allocators} - finished - set(self.done_cells):
            for table in self.rows:  # partial rows of an allocator measured again from the start
                self.rows[table] = [r for r in self.rows[table] if r.get("allocator") != name]

    def record(self, name: str) -> AllocatorRecord:
        return self.manifest.record(name)

    def save(self) -> None:
        save_run(self.folder, self.rows, self.manifest)

    def line(self, result: CellResult) -> None:
        """A cell's line in the manifest's `cells` (every attempt has one), and nothing more."""
        self.manifest.add_cell(cell_record(result, attempt=result.attempt, worker=result.worker))

    def merge(self, result: CellResult) -> None:
        """Take a finished cell in: its earlier attempts' lines and its own, its rows, its
        allocator's record (bench.experiments.cell.merge_cell); then save."""
        for note in self.on_merge:
            for attempt in (*result.earlier, result):
                note(attempt)
        for earlier in result.earlier:
            self.line(earlier)
        if result.page_cache_dropped is not None:
            self.manifest.confounds["page_cache_dropped"] = result.page_cache_dropped
        self.line(result)
        record = self.record(result.cell.allocator)
        if record.started is None:
            record.started = now()
        if record.status == "pending":
            record.status = "running"
        merge_cell(record, self.rows, result, by_host=self.manifest.cluster is not None)
        self.save()

    def allocator_done(self, name: str) -> None:
        """Every cell of the allocator finished ok: it is ok now, not at the end of the run
        (an interrupted run keeps it)."""
        record = self.record(name)
        record.status, record.finished = "ok", now()
        self.save()

    def interrupt(self, exc: BaseException | None = None) -> None:
        """Ctrl-C: what was under way becomes incomplete; an interrupted local repeat's samples
        and requests are kept, marked by that status. Saved."""
        for rec in self.manifest.allocators:
            if rec.status == "running" and isinstance(exc, Interrupted):
                partial = {"memory": exc.memory, "requests": exc.requests}
                stamp_host(partial, host_name())
                self.rows["memory"] += exc.memory
                self.rows["requests"] += exc.requests
                rec.phases[exc.experiment] += exc.phases
            if rec.status in ("pending", "running"):
                rec.status, rec.reason = "incomplete", "interrupted"
        self.stop("incomplete")

    def stop(self, status: str) -> None:
        """The run ends with `status` (incomplete: interrupted, or calibration failed)."""
        self.manifest.status, self.manifest.finished = status, now()
        self.save()

    def complete(self) -> None:
        """The run is whole: saved complete, and `latest` points at it."""
        self.stop("complete")
        set_latest(self.folder)
