"""What watches a service repeat beside the core measurement: one small interface.

A service repeat (bench.experiments.service) launches the service, walks its phases, samples
its memory and drives its load; that is the core. Around it, watchers each follow one concern
of the same repeat: the memory limit and the group's counters (bench.experiments.oomkills),
recycled workers (bench.experiments.restarts), the workers' live sets and heaps
(bench.experiments.liveset), the idle probes (bench.experiments.idleprobes), and where the
workers' memory sits over time (bench.experiments.retention). Each sees the repeat through the
same four moments, so the runner needs to know none of them by name:

- `env()`: variables the service is launched with (most watchers need none);
- `moment(m)`: a phase began, or the workers answered /stats (`Moment`);
- `check(svc, phase)`: about every half second while the repeat runs; a returned sentence
  ends the repeat as a lost service (a worker died, a replacement is on another library);
- `finish(end)`: once the repeat ended (`RepeatEnd`, the core's measurements), what the
  watcher adds to the summary and the tables (`Contribution`).

`startup_note()` is said after a service that did not start (the memory limit's kills, which
explain it); most watchers say nothing. Every proof of a process on the allocator goes into
one list, `Launch.proofs`, so a worker proven once (by any watcher or the core) is not proven
again under another role.

How to add a watcher: write one module in bench/experiments with a class that has the five
members of `Watcher` (subclass `Quiet` for those it leaves alone) and takes a `Launch` in
its constructor (raise ExperimentError there when
the repeat cannot run with it), then add the class to `WATCHERS` in
bench.experiments.watchlist, the one place where watchers are registered (their order is the
order of their flags and evidence). A new table it writes needs its schema in
bench.results.tables and its rows under that name in `Contribution.rows`; a new summary column
its schema there too, in `Contribution.columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bench.allocators.registry import Allocator
    from bench.experiments.harness import PhaseLog
    from bench.measure.groups import MemoryGroup
    from bench.measure.sampler import Sample, Sampler
    from bench.spec.models import ServiceSpec
    from service.launcher import ServiceProcess

__all__ = ["Contribution", "Launch", "Moment", "Quiet", "RepeatEnd", "Watcher", "combine"]


@dataclass(frozen=True)
class Launch:
    """What a watcher is made from, before the service is launched.

    `origin` is the repeat's zero (time.monotonic()); `scratch` a folder of the repeat's own,
    removed when the repeat ends (Ctrl-C too); `proofs` the repeat's list of proofs of the
    allocator, shared by everything that proves a process."""

    service: ServiceSpec
    alloc: Allocator
    repeat: int
    origin: float
    group: MemoryGroup
    scratch: Path
    proofs: list[dict[str, Any]]


@dataclass(frozen=True)
class Moment:
    """A phase beginning (`launch`, `warmup`, `load`, `idle`, `reclaim`, `end`: the last once
    sampling stopped, the service still up) or a reading of every worker's /stats (`ready`,
    `load_end`, `idle_end`, with the `answers` by pid). `t` is time.monotonic(); `service` the
    running service (None before it started)."""

    name: str
    t: float
    service: ServiceProcess | None = None
    answers: dict[int, dict[str, Any]] | None = None


@dataclass(frozen=True)
class RepeatEnd:
    """The core's account of a finished repeat: what the watchers' `finish` and the summary
    (bench.experiments.repeat_summary) read.

    `log` holds the phase boundaries on the repeat's clock (seconds since `origin`, a
    time.monotonic()): a settled idle ends where its rule ended it. `fault` is why the service
    was lost (None: it was not); `loadgen` the load generator's summary and `request_rows` its
    rows; `samples` the memory samples, `ready` the one of the fresh service and `last` the
    one after the forced reclaim (None: none ran, `reclaim_how` says why); `calls` the runner's
    own /stats calls; `cpu` the machine's CPU account; `idle_least_s` the least idle of an idle
    that ends once memory has settled (None: a fixed idle); `proofs` the allocator's proofs."""

    origin: float
    log: PhaseLog
    fault: str | None
    request_rows: list[dict[str, Any]]
    loadgen: Any
    samples: list[Sample]
    sampler: Sampler
    ready: Sample | None
    last: Sample | None
    reclaim_how: str | None
    calls: list[dict[str, Any]]
    cpu: dict[str, float | None]
    teardown_s: float
    app_errors: list[str]
    idle_least_s: float | None
    proofs: list[dict[str, Any]]


@dataclass
class Contribution:
    """What one watcher adds to its repeat's summary row, flags, records and tables.

    `lead_flags` go before the method's own flags (they may explain the failures those count),
    `flags` after them. `rows` are rows of run tables by table name; `records` items of the
    repeat's manifest record (`memory_limit`, `live_set`, `per_worker`); `sampler` keys of the
    repeat's sampler record. `explains_failures`: failed requests follow from what this
    watcher saw (a killed or recycled worker), so they do not count against the app's pace.
    """

    columns: dict[str, Any] = field(default_factory=dict)
    lead_flags: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)
    sampler: dict[str, Any] = field(default_factory=dict)
    explains_failures: bool = False


class Watcher(Protocol):
    """One concern of a service repeat (the module docstring says how to add one)."""

    def env(self) -> dict[str, str]:
        """Variables for the service's processes at launch."""
        ...

    def moment(self, m: Moment) -> None:
        """A phase began, or the workers answered /stats."""
        ...

    def check(self, svc: ServiceProcess, phase: str) -> str | None:
        """Why the service is lost now (None: it is not); called about every half second."""
        ...

    def startup_note(self) -> str:
        """Said after a service that did not start ("" for nothing)."""
        ...

    def finish(self, end: RepeatEnd) -> Contribution:
        """What this watcher adds to the repeat, once it ended."""
        ...


class Quiet:
    """A watcher's members that most leave alone: no environment, no moments, no check,
    nothing to say after a failed start. A watcher subclasses it and overrides what its
    concern needs, `finish` always."""

    def env(self) -> dict[str, str]:
        return {}

    def moment(self, m: Moment) -> None:
        return None

    def check(self, svc: ServiceProcess, phase: str) -> str | None:
        return None

    def startup_note(self) -> str:
        return ""


def combine(parts: list[Contribution]) -> Contribution:
    """The watchers' contributions as one, in the watchers' order."""
    out = Contribution()
    for part in parts:
        out.columns.update(part.columns)
        out.lead_flags += part.lead_flags
        out.flags += part.flags
        for name, rows in part.rows.items():
            out.rows.setdefault(name, []).extend(rows)
        out.records.update(part.records)
        out.sampler.update(part.sampler)
        out.explains_failures = out.explains_failures or part.explains_failures
    return out
