"""Where each worker's memory sits over a repeat: the retention table's watcher.

When the spec's `service.retention_every_s` is above 0, the service is launched with
ALLOCSTUDY_RETENTION_LOG naming a folder in the repeat's scratch space, and each worker's event
loop appends a reading of its allocator's statistics and the kernel's view of it every so many
seconds (service.retentionlog). Once the repeat has ended this watcher reads every worker's
log, places each reading in the repeat's own phases (`Phases`, from the phase log: a settled
idle ends where its rule ended it) and turns them into rows of the `retention` table
(bench.measure.retention.table_rows). The logs go with the scratch folder.

A worker whose log is missing or empty costs the table its rows, never the repeat: the
sampler record's `retention.notes` says which worker and why.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.experiments.proof import REPLACEMENT
from bench.experiments.watcher import Contribution, Launch, Moment, Quiet, RepeatEnd
from bench.measure.retention import Phases, table_rows, unaccounted_flag
from service.retentionlog import ENV_DIR, ENV_EVERY, read_lines

__all__ = ["RetentionWatcher", "read_logs"]

_LOG_NAME = re.compile(r"^retention-(\d+)\.jsonl$")


def read_logs(
    folder: Path, workers: list[int]
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every worker's readings by pid (as text), and a note for each worker of `workers`
    whose log is missing or empty (a log of a worker not in the list is read too)."""
    found: dict[int, Path] = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        if match := _LOG_NAME.match(path.name):
            found[int(match.group(1))] = path
    lines: dict[str, list[dict[str, Any]]] = {}
    notes = []
    for pid in sorted(set(workers) | set(found)):
        if pid not in found:
            notes.append(f"worker {pid} wrote no retention log")
            continue
        try:
            read = read_lines(str(found[pid]))
        except OSError as exc:
            notes.append(f"worker {pid}'s retention log could not be read: {exc.strerror}")
            continue
        if not read:
            notes.append(f"worker {pid}'s retention log holds no whole reading")
            continue
        lines[str(pid)] = read
    return lines, notes


class RetentionWatcher(Quiet):
    """The retention logs of one repeat's workers, read into the `retention` table."""

    def __init__(self, launch: Launch) -> None:
        self._launch = launch
        self.every_s = float(launch.service.retention_every_s)
        self.folder: Path | None = None
        if self.every_s > 0:
            self.folder = launch.scratch / "retention"
            self.folder.mkdir()
        self.lines: dict[str, list[dict[str, Any]]] = {}
        self.notes: list[str] = []

    def env(self) -> dict[str, str]:
        if self.folder is None:
            return {}
        return {ENV_DIR: str(self.folder), ENV_EVERY: f"{self.every_s:g}"}

    def moment(self, m: Moment) -> None:
        if m.name == "end" and self.folder is not None:  # idle is over; the folder goes soon
            workers = [
                int(p["pid"])
                for p in self._launch.proofs
                if p.get("role") in ("worker", REPLACEMENT)
            ]
            self.lines, self.notes = read_logs(self.folder, workers)

    def finish(self, end: RepeatEnd) -> Contribution:
        if self.folder is None:
            return Contribution()
        notes = list(self.notes)
        rows: list[dict[str, Any]] = []
        load, idle = end.log.span("load"), end.log.span("idle")
        if load is None:
            notes.append("no load phase was recorded: no reading has a phase to belong to")
        else:
            phases = Phases(
                origin=end.origin,
                load_start=end.origin + load[0],
                load_end=end.origin + load[1],
                idle_end=end.origin + (idle[1] if idle else load[1]),
            )
            rows = table_rows(
                self.lines, phases, allocator=self._launch.alloc.name, repeat=self._launch.repeat
            )
        # A breakdown the statistics leave unexplained is noted, not a method flag: the memory
        # was measured as well as ever, only its split is in doubt (the article says so too).
        if flag := unaccounted_flag(rows):
            notes.append(flag)
        record = {"every_s": self.every_s, "workers_logged": len(self.lines), "notes": notes}
        return Contribution(rows={"retention": rows}, sampler={"retention": record})
