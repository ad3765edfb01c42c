"""Worker deaths under a memory limit: which were the limit's doing, and what they add up to.

Without a limit, a worker that dies mid-run is the allocator's failure (a crash, a signal):
the repeat stops and the allocator fails. Under a limit (the spec's
`service.memory_limit_mb`, bench.measure.memlimit), the kernel killing a worker that grew past
it is what the experiment asks about: how long each allocator lives under the cap, and how
often its workers are killed. Such a death is recorded, flagged, and the repeat goes on:
uvicorn's supervisor starts a replacement worker (which the runner proves is on the allocator
too) and the load keeps coming, its failures charged as every failure is.

A death is the limit's (`classify`) when it was a SIGKILL and either the group's OOM-kill count
rose by more than the deaths already put down to it (`oom_kill`), or the group met its limit
shortly before (`at_limit`: its limit-hit count rose in the seconds before the death was
noticed, or v1 says it is under OOM), for kernels that count no OOM kills and for a worker the
supervisor killed because it stopped answering while the group was at its limit. Every other
death still fails the allocator.

`LimitWatch` reads the group's counters at every phase boundary (the manifest keeps them),
sorts the deaths the supervisor reports, and gives the summary its columns. `LimitWatcher` is
the repeat's watcher (bench.experiments.watcher) around it: it sets the limit on the empty
group, restarts the group's high-water mark as load begins, judges every worker death, proves
by their maps the replacements that never answered, and adds the limit's and the group's
charge columns (`load_charge`) to the summary.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from bench.experiments.harness import ExperimentError
from bench.experiments.proof import prove_by_maps
from bench.experiments.watcher import Contribution, Launch, Moment, RepeatEnd
from bench.measure.groups import CgroupMode
from bench.measure.machine import swap_bytes
from bench.measure.memlimit import (
    LimitCounters,
    LimitUnavailable,
    apply_limit,
    limit_bytes,
    read_counters,
)
from service.workerexits import WorkerExit

if TYPE_CHECKING:
    from service.launcher import ServiceProcess

__all__ = [
    "AT_LIMIT_WINDOW_S",
    "LimitDeath",
    "LimitWatch",
    "LimitWatcher",
    "classify",
    "load_charge",
]

#: A limit hit this many seconds before a SIGKILL was noticed makes it the limit's (the
#: supervisor notices a death within half a second; the runner reads its log as often).
AT_LIMIT_WINDOW_S = 3.0

Cause = Literal["oom_kill", "at_limit"]


def classify(gone: WorkerExit, *, unclaimed_oom_kills: int, at_limit: bool) -> Cause | None:
    """Whether a worker's death was the memory limit's, and by which evidence (None: not).

    Only a SIGKILL can be: the OOM killer sends nothing else, and a crash (SIGSEGV, an exit
    code) stays the allocator's failure whatever the memory. A kill counted by the kernel
    (`unclaimed_oom_kills` > 0) is an OOM kill, also when the supervisor reported the worker
    as hung: a worker stalled in reclaim at the limit stops answering the supervisor's health
    check, and the kernel's kill then lands while the supervisor waits for the answer (seen
    on this project's machine). Otherwise a SIGKILL while the group was at its limit (the
    kernel may count no OOM kills, or the supervisor killed a worker that stopped answering
    under the pressure) is put down to the limit too.
    """
    if gone.exitcode != -signal.SIGKILL:
        return None
    if unclaimed_oom_kills > 0:
        return "oom_kill"
    if at_limit:
        return "at_limit"
    return None


@dataclass(frozen=True)
class LimitDeath:
    """One worker the limit killed, on the run's clock."""

    pid: int
    t_s: float
    phase: str
    signal: str | None
    cause: Cause
    hung: bool

    def phrase(self) -> str:
        """For the repeat's flags: `worker 123 was OOM-killed 14.2 s into the run (load)`."""
        if self.cause == "oom_kill":
            how = "was OOM-killed"
        elif self.hung:
            how = "stopped answering at the memory limit and was killed"
        else:
            how = f"was killed by {self.signal} at the memory limit"
        return f"worker {self.pid} {how} {self.t_s:.1f} s into the run ({self.phase})"


@dataclass
class LimitWatch:
    """The counters of one repeat's memory group, and the deaths its limit caused.

    `limit` None: no limit was set; every death stays a failure (`sort` returns them all),
    and the watch only reads the group's charged peak for the summary.
    """

    mode: CgroupMode
    path: Path | None
    limit: int | None
    origin: float
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    deaths: list[LimitDeath] = field(default_factory=list)
    _first: LimitCounters | None = None
    _last: LimitCounters | None = None
    _hits: list[tuple[float, int]] = field(default_factory=list)
    _seen: set[tuple[int, float]] = field(default_factory=set)

    def read(self) -> LimitCounters | None:
        """The counters now (kept for the at-limit judgement)."""
        now = read_counters(self.mode, self.path)
        if now is not None:
            self._first = self._first or now
            self._last = now
            if now.limit_hits is not None:
                self._hits.append((time.monotonic(), now.limit_hits))
        return now

    def snapshot(self, at: str) -> None:
        """The counters at a phase boundary, for the manifest (`at`: the phase beginning)."""
        now = self.read()
        if now is not None:
            t_s = round(time.monotonic() - self.origin, 3)
            self.snapshots.append({"at": at, "t_s": t_s, **now.as_record()})

    def _at_limit(self, noticed: float, now: LimitCounters) -> bool:
        if now.under_oom:
            return True
        if now.limit_hits is None:
            return False
        before = [h for t, h in self._hits if t <= noticed - AT_LIMIT_WINDOW_S]
        base = before[-1] if before else (self._hits[0][1] if self._hits else 0)
        return now.limit_hits > base

    def sort(self, exits: Sequence[WorkerExit], phase: str) -> list[WorkerExit]:
        """The deaths that are not the limit's (each fails the repeat); the limit's are kept.

        `phase` is the phase now, for a death before the first snapshot.

        Called with every death the supervisor reported so far, about every half second
        (each call reads the counters); each death is judged once.
        """
        if self.limit is None:
            return list(exits)
        now = self.read()  # every call: the limit-hit history the at-limit judgement reads
        new = [g for g in exits if (g.pid, g.noticed) not in self._seen]
        claimed = sum(d.cause == "oom_kill" for d in self.deaths)
        base = self._first.oom_kills if self._first and self._first.oom_kills is not None else 0
        counted = now.oom_kills if now is not None and now.oom_kills is not None else base
        # the deaths seen dead first, then those replaced as hung: the kernel's count goes to
        # the plain deaths before a hung one can claim it
        for gone in sorted(new, key=lambda g: (g.hung, g.noticed)):
            self._seen.add((gone.pid, gone.noticed))
            cause = classify(
                gone,
                unclaimed_oom_kills=counted - base - claimed,
                at_limit=now is not None and self._at_limit(gone.noticed, now),
            )
            if cause is None:
                continue
            claimed += cause == "oom_kill"
            t_s = round(gone.noticed - self.origin, 3)
            self.deaths.append(
                LimitDeath(
                    pid=gone.pid,
                    t_s=t_s,
                    phase=self._phase_at(t_s) or phase,
                    signal=gone.signal_name,
                    cause=cause,
                    hung=gone.hung,
                )
            )
        return [g for g in exits if not self._is_limits(g)]

    def _phase_at(self, t_s: float) -> str | None:
        """The phase at a moment, from the snapshots taken as each began (a death noticed
        while the runner was busy elsewhere is judged later, in a later phase)."""
        began = [s["at"] for s in self.snapshots if s["t_s"] <= t_s]
        if not began:
            return None
        return "start" if began[-1] == "launch" else began[-1]

    def _is_limits(self, gone: WorkerExit) -> bool:
        t_s = round(gone.noticed - self.origin, 3)
        return any(d.pid == gone.pid and d.t_s == t_s for d in self.deaths)

    @property
    def killed_pids(self) -> set[int]:
        return {d.pid for d in self.deaths}

    def flags(self) -> list[str]:
        """One flag per death the limit caused (the repeat's summary `flags`)."""
        return [d.phrase() for d in self.deaths]

    def startup_note(self) -> str:
        """Said after a start-up failure under a limit: the kills that explain it, if any."""
        if self.limit is None:
            return ""
        now = self.read()
        kills = (
            now.oom_kills - (self._first.oom_kills or 0)
            if now and self._first and now.oom_kills is not None
            else None
        )
        counted = f"; the kernel OOM-killed {kills} of its processes" if kills else ""
        return f" (under a memory limit of {self.limit / 1e6:,.0f} MB{counted})"

    def summary(self) -> dict[str, Any]:
        """The summary columns: the limit, its kills and hits, and the group's charged peak."""
        last, first = self._last, self._first
        hits = (
            last.limit_hits - first.limit_hits
            if last and first and last.limit_hits is not None and first.limit_hits is not None
            else None
        )
        return {
            "memory_limit_bytes": self.limit,
            "oom_kills": len(self.deaths) if self.limit is not None else None,
            "first_oom_s": min((d.t_s for d in self.deaths), default=None),
            "limit_hits": hits if self.limit is not None else None,
            "peak_charged_bytes": last.peak_bytes if last else None,
        }

    def record(self, repeat: int, applied: dict[str, Any] | None) -> dict[str, Any] | None:
        """The manifest's account of the limit in one repeat (None without a limit)."""
        if self.limit is None:
            return None
        return {
            "repeat": repeat,
            **(applied or {"limit_bytes": self.limit}),
            "counters": self.snapshots,
            "deaths": [asdict(d) for d in self.deaths],
        }


def load_charge(snapshots: list[dict[str, Any]], peak_reset: str | None) -> dict[str, Any]:
    """The kernel's account of the load: the group's highest charge during it (the high-water
    mark read as idle began, restarted as load began where `peak_reset` says so) and its
    charge as load ended. Both count anonymous memory, page cache and kernel memory; they
    catch a peak briefer than the sampler's interval, which the sampled anonymous peak may
    miss. Null where the service ran in no memory group."""
    at_idle = next((s for s in snapshots if s.get("at") == "idle"), None)
    return {
        "load_peak_charged_bytes": at_idle.get("peak_bytes") if at_idle else None,
        "load_end_charged_bytes": at_idle.get("usage_bytes") if at_idle else None,
        "load_peak_source": peak_reset if at_idle else None,
    }


class LimitWatcher:
    """The memory group's watcher in a service repeat: its limit, counters and deaths.

    Made on the empty group, before the service joins it: the limit is set then (an
    ExperimentError when it cannot be), so everything the service starts is held by it.
    """

    def __init__(self, launch: Launch) -> None:
        group = launch.group
        self._launch = launch
        self.watch = LimitWatch(
            group.mode, group.path, limit_bytes(launch.service.memory_limit_mb), launch.origin
        )
        self.applied: dict[str, Any] | None = None
        self.peak_reset: str | None = None  # the kernel high-water mark restarted as load began
        if self.watch.limit is not None:
            try:
                self.applied = apply_limit(
                    group.mode, group.path, self.watch.limit, swap_bytes=swap_bytes
                )
            except LimitUnavailable as exc:
                raise ExperimentError(str(exc)) from None
        self.watch.snapshot("launch")

    def env(self) -> dict[str, str]:
        return {}

    def moment(self, m: Moment) -> None:
        if m.answers is not None:  # a /stats reading, no phase
            if m.name == "idle_end" and self.watch.deaths and m.service is not None:
                # a replacement whose /stats never answered in time: its maps, at least
                proofs = self._launch.proofs
                proofs += prove_by_maps(m.service, self._launch.alloc, self._launch.repeat, proofs)
            return
        if m.name == "load":  # the kernel's high-water mark: from here on
            self.peak_reset = self._launch.group.reset_peak()
        if m.name != "launch":
            self.watch.snapshot(m.name)

    def check(self, svc: ServiceProcess, phase: str) -> str | None:
        """The deaths the supervisor reported that are not the limit's (each loses the
        service); under a limit, a worker the limit killed is recorded instead."""
        gone = self.watch.sort(svc.worker_exits(), phase)
        if not gone:
            return None
        origin = self.watch.origin
        return "; ".join(
            f"worker {g.pid} {g.how()} {g.noticed - origin:.1f} s into the run ({phase})"
            for g in gone
        )

    def startup_note(self) -> str:
        return self.watch.startup_note()

    def finish(self, end: RepeatEnd) -> Contribution:
        return Contribution(
            columns={
                **self.watch.summary(),
                **load_charge(self.watch.snapshots, self.peak_reset),
            },
            lead_flags=self.watch.flags(),
            records={"memory_limit": self.watch.record(self._launch.repeat, self.applied)},
            explains_failures=bool(self.watch.deaths),
        )
