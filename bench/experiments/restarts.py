"""The restarts of a recycling service, as one repeat of the service experiment records them.

With `service.max_requests` set, workers retire after their limit of requests and are
replaced (service.recycling): the feature, not a failure. The supervisor's log tells each
restart (old pid, new pid, requests served, when); this module turns them into rows of the
`restarts` table, proves each replacement on the allocator as the first workers were (the
library serving its malloc, from inside it; the library mapped, while it runs), and counts
the load requests that hit a restarting worker.

A request hit a restart when it was in flight, from its scheduled time to its answer, while
the worker was away (from the moment the old worker stopped accepting until its replacement
served) and it either failed (a connection closed under it, refused, timed out) or was
answered by the replacement (it waited in the socket's queue for the new worker). Such
requests are charged in the latency percentiles like any other, from their scheduled time;
this count says how many there were.

`RestartWatcher` is the repeat's watcher (bench.experiments.watcher) around `RestartWatch`:
its check proves replacements as they come, and its finish adds the rows and counts.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench.allocators.verification import library_mapped
from bench.experiments.proof import REPLACEMENT
from bench.experiments.watcher import Contribution, Launch, Moment, RepeatEnd
from service.recycling import Restart

if TYPE_CHECKING:
    from service.launcher import ServiceProcess

__all__ = ["RestartWatch", "RestartWatcher", "requests_hit", "restart_rows"]


def _window(restart: Restart, origin: float) -> tuple[float, float]:
    """When the worker was away, on the run's clock (open-ended without a ready time)."""
    end = math.inf if restart.ready is None else restart.ready - origin
    return restart.stopped - origin, end


def _hit(row: dict[str, Any], start: float, end: float, new_pid: int) -> bool:
    intended, done = row.get("intended_s"), row.get("done_s")
    if intended is None:
        return False
    finished = math.inf if done is None else done
    if intended > end or finished < start:
        return False
    return row.get("error") is not None or row.get("worker") == new_pid


def requests_hit(
    rows: Iterable[dict[str, Any]], restarts: Sequence[Restart], origin: float
) -> list[int]:
    """For each restart, how many of `rows` (request rows) hit it (see the module doc)."""
    rows = list(rows)
    return [sum(_hit(r, *_window(x, origin), x.new_pid) for r in rows) for x in restarts]


def restart_rows(
    restarts: Sequence[Restart],
    *,
    origin: float,
    allocator: str,
    repeat: int,
    request_rows: Sequence[dict[str, Any]],
    phase_at: Callable[[float], str | None],
) -> tuple[list[dict[str, Any]], int]:
    """Rows of the `restarts` table, and the load requests that hit any restart (each once).

    `phase_at(t_s)` names the phase at a time of the run's clock.
    """
    load = [r for r in request_rows if r.get("phase") == "load"]
    hits = requests_hit(load, restarts, origin)
    windows = [(*_window(x, origin), x.new_pid) for x in restarts]
    during = sum(any(_hit(r, *w) for w in windows) for r in load)
    rows = []
    for x, hit in zip(restarts, hits, strict=True):
        t_s = x.stopped - origin
        rows.append(
            {
                "allocator": allocator,
                "repeat": repeat,
                "t_s": round(t_s, 6),
                "phase": phase_at(t_s),
                "old_pid": x.old_pid,
                "new_pid": x.new_pid,
                "requests": x.requests,
                "limit": x.limit,
                "replaced_s": round(x.noticed - origin, 6),
                "ready_s": None if x.ready is None else round(x.ready - origin, 6),
                "requests_hit": hit,
            }
        )
    return rows, during


@dataclass
class RestartWatch:
    """Proves every replacement worker on the allocator, while the repeat runs.

    `check(restarts)` is called every half second with the restarts so far: a replacement
    is proven once its ready line (the library serving its malloc, from dladdr inside it) is
    in, the library's mapping checked while the process still runs (a recycled worker may be
    gone again by the end). It returns why a replacement is not on the allocator, or None.
    `known`: pids already proven otherwise (a replacement that answered /stats first).
    """

    expected: str
    repeat: int
    evidence: list[dict[str, Any]] = field(default_factory=list)
    _proven: set[int] = field(default_factory=set)

    def check(self, restarts: Iterable[Restart], known: Iterable[int] = ()) -> str | None:
        self._proven.update(known)
        for x in restarts:
            if x.new_pid in self._proven or x.ready is None:
                continue
            self._proven.add(x.new_pid)
            served = x.malloc_library
            row = {
                "repeat": self.repeat,
                "pid": x.new_pid,
                "role": REPLACEMENT,
                "replaces": x.old_pid,
                "malloc_library": served,
                "mapped": library_mapped(x.new_pid, self.expected),
            }
            self.evidence.append(row)
            if (served and os.path.realpath(served) != self.expected) or row["mapped"] is False:
                return (
                    f"replacement worker {x.new_pid} (for {x.old_pid}) is not on the allocator: "
                    f"malloc served by {served}, {self.expected} mapped: {row['mapped']}"
                )
        return None


class RestartWatcher:
    """A recycling service's restarts in one repeat: each replacement proven as it comes
    (into the repeat's one list of proofs), each restart a row of the `restarts` table."""

    def __init__(self, launch: Launch) -> None:
        self._launch = launch
        self.watch = RestartWatch(launch.alloc.expected_library(), launch.repeat)
        self.restarts: list[Restart] = []

    def env(self) -> dict[str, str]:
        return {}

    def moment(self, m: Moment) -> None:
        if m.name == "end" and m.service is not None:  # before the stop removes its log
            self.restarts = m.service.restarts()

    def check(self, svc: ServiceProcess, phase: str) -> str | None:
        proofs = self._launch.proofs
        before = len(self.watch.evidence)
        problem = self.watch.check(svc.restarts(), known=[r["pid"] for r in proofs])
        proofs += self.watch.evidence[before:]
        return problem

    def startup_note(self) -> str:
        return ""

    def finish(self, end: RepeatEnd) -> Contribution:
        rows, during = restart_rows(
            self.restarts,
            origin=end.origin,
            allocator=self._launch.alloc.name,
            repeat=self._launch.repeat,
            request_rows=end.request_rows,
            phase_at=end.log.phase_at,
        )
        return Contribution(
            columns={"restarts": len(rows), "requests_during_restart": during},
            rows={"restarts": rows},
            explains_failures=bool(rows),
        )
