"""What a load run did and how well it kept its plan: the per-request record and its summary.

The columnar `Record` holds every request that came due (its stage, endpoint, due offset, send
and done times, status, and what each answer said of its worker); `summarize` turns a
finished record into the `LoadSummary` the generator prints; `spread` and the running
`LatencyHistogram` say how late sends were and how long answers took. Pure: no clocks, no
sockets (bench.load.generator fills the record).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from bench.load.schedule import Stage, rate_at, stage_starts
from bench.measure.runstats import percentile  # one definition for the generator and the runner

__all__ = [
    "SUMMARY_VERSION",
    "LatencyHistogram",
    "LoadSummary",
    "Record",
    "Spread",
    "StageSummary",
    "spread",
    "summarize",
]


@dataclass(frozen=True)
class Spread:
    """Median, 99th percentile and maximum of a sample (all None when there is no sample)."""

    n: int
    p50: float | None
    p99: float | None
    max: float | None

    def scaled(self, factor: float) -> Spread:
        """The same spread in other units (seconds to milliseconds: 1000)."""

        def scale(v: float | None) -> float | None:
            return None if v is None else v * factor

        return Spread(self.n, scale(self.p50), scale(self.p99), scale(self.max))


def spread(values: Sequence[float]) -> Spread:
    """p50, p99 and max of a sample, for send lateness and latency summaries."""
    if not values:
        return Spread(0, None, None, None)
    ordered = sorted(values)
    return Spread(
        len(ordered), percentile(ordered, 50), percentile(ordered, 99), float(ordered[-1])
    )


class LatencyHistogram:
    """A running histogram of latencies with log-spaced buckets, for live progress.

    Adding a sample is O(1) and a quantile is one pass over ~1000 counters, so the generator
    can report "p99 so far" every second without sorting a growing list. Buckets grow by a
    factor of 10**(1/per_decade) (2.3% at the default 100), which bounds the relative error of
    a quantile. Values below `low` s count in the first bucket, above `high` in the last.
    """

    def __init__(self, low: float = 1e-6, high: float = 1e3, per_decade: int = 100) -> None:
        if not 0 < low < high:
            raise ValueError("need 0 < low < high")
        self.low, self.per_decade = low, per_decade
        self._scale = per_decade / math.log(10)
        self.size = math.ceil(math.log10(high / low) * per_decade) + 1
        self.counts = [0] * self.size
        self.n = 0

    def add(self, value: float) -> None:
        """Count one sample, seconds."""
        index = int(math.log(value / self.low) * self._scale) + 1 if value > self.low else 0
        self.counts[min(index, self.size - 1)] += 1
        self.n += 1

    def upper_bound(self, index: int) -> float:
        """The largest value bucket `index` holds, seconds."""
        return self.low * 10 ** (index / self.per_decade)

    def quantile(self, q: float) -> float | None:
        """Upper bound of the bucket holding the q-quantile (0..1); None with no samples."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile q must be within 0..1, not {q}")
        if self.n == 0:
            return None
        target = max(1, math.ceil(q * self.n))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= target:
                return self.upper_bound(index)
        return self.upper_bound(self.size - 1)  # pragma: no cover - seen reaches n above


# ---------------------------------------------------------------------------------------------
# What a run did: one entry per request that came due, and its summary

NOT_YET = math.nan
STATUS_PENDING = -1


@dataclass
class Record:
    """One entry per request that came due, in arrays (a 10-minute run is 120,000 entries).

    `offset` is the due time as planned, seconds after t0, kept apart from t0 so that rows
    carry exactly t0 + i/rate; sent and done are time.monotonic() values (NaN: not happened);
    status -1 means still pending.
    """

    endpoints: tuple[str, ...]
    phases: tuple[str, ...]
    t0: float = math.nan
    #: the plan's stages, to give each row the rate offered when it came due, and which stage
    #: of the spec's load each is (1, 2, ...; None: warm-up or idle); empty: rows carry neither
    plan: tuple[Stage, ...] = ()
    load_stages: tuple[int | None, ...] = ()
    stage: array[int] = field(default_factory=lambda: array("h"))
    endpoint: array[int] = field(default_factory=lambda: array("h"))
    offset: array[float] = field(default_factory=lambda: array("d"))
    sent: array[float] = field(default_factory=lambda: array("d"))
    done: array[float] = field(default_factory=lambda: array("d"))
    status: array[int] = field(default_factory=lambda: array("i"))
    worker: array[int] = field(default_factory=lambda: array("i"))
    live: array[int] = field(default_factory=lambda: array("q"))
    errors: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.offset)

    def add(self, stage: int, endpoint: int, offset: float) -> int:
        """A request came due `offset` s after t0; its index."""
        self.stage.append(stage)
        self.endpoint.append(endpoint)
        self.offset.append(offset)
        self.sent.append(NOT_YET)
        self.done.append(NOT_YET)
        self.status.append(STATUS_PENDING)
        self.worker.append(-1)
        self.live.append(-1)
        return len(self.offset) - 1

    def intended(self, i: int) -> float:
        """The due time of request i, time.monotonic() seconds."""
        return self.t0 + self.offset[i]

    def finish(self, i: int, status: int, error: str | None, done: float = NOT_YET) -> None:
        """Close request i with an HTTP status (0: transport error) and error text or None."""
        self.status[i] = status
        self.done[i] = done
        if error is not None:
            self.errors[i] = error

    def report(self, i: int, worker: int, live_bytes: int) -> None:
        """What the worker answering request i said of itself: its pid and live bytes (-1: not
        said; a hosted app's answers name only their worker)."""
        self.worker[i] = worker
        self.live[i] = live_bytes

    def close_pending(self, error: str) -> int:
        """Mark every request still pending as a transport error `error`; how many there were."""
        closed = 0
        for i, status in enumerate(self.status):
            if status == STATUS_PENDING:
                self.finish(i, 0, error)
                closed += 1
        return closed

    def rows(self, origin: float, allocator: str | None, repeat: int | None) -> dict[str, list]:
        """Columns of the `requests` table, times in seconds since `origin`."""

        def rel(values: array[float]) -> list[float | None]:
            return [None if math.isnan(v) else v - origin for v in values]

        n, base = len(self), self.t0 - origin
        starts = stage_starts(self.plan)
        labels = self.load_stages or (None,) * len(self.phases)
        stage = [labels[s] for s in self.stage]
        stage_rate = [
            None if label is None else rate_at(self.plan[s], offset - starts[s])
            for s, label, offset in zip(self.stage, stage, self.offset, strict=True)
        ]
        return {
            "allocator": [allocator] * n,
            "repeat": [repeat] * n,
            "endpoint": [self.endpoints[e] for e in self.endpoint],
            "intended_s": [base + v for v in self.offset],
            "sent_s": rel(self.sent),
            "done_s": rel(self.done),
            "status": list(self.status),
            "error": [self.errors.get(i) for i in range(n)],
            "phase": [self.phases[s] for s in self.stage],
            "worker": [None if w < 0 else w for w in self.worker],
            "live_bytes": [None if v < 0 else v for v in self.live],
            "stage": stage,
            "stage_rate": stage_rate,
        }


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: Version of the summary JSON and the progress file; bumped when a field changes meaning.
SUMMARY_VERSION = 1


class StageSummary(_Model):
    """What one stage achieved: requests that came due, answered OK, failed; rate achieved."""

    phase: str
    rate: float
    duration_s: float
    start_s: float
    elapsed_s: float
    requests: int
    ok: int
    errors: int
    achieved_rps: float | None


class LoadSummary(_Model):
    """The generator's account of a run, printed as one JSON line on stdout at exit."""

    version: int = SUMMARY_VERSION
    requests: int  # came due (one row each)
    sent: int
    completed: int  # an HTTP response arrived, whatever its status
    ok: int  # status 200..399
    errors: int  # status 0 or >= 400
    overload: int
    cancelled: int
    error_kinds: dict[str, int]
    stages: list[StageSummary]
    late_ms_p50: float | None
    late_ms_p99: float | None
    late_ms_max: float | None
    latency_ms_p50: float | None  # of OK requests, from the intended time
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    t0_s: float
    end_s: float
    wall_s: float
    cpu_s: float
    cpu_pct: float  # of one core, over the schedule (t0 to end)
    start_late_s: float
    stopped_by: str | None  # signal name when stopped early
    loop: str
    cpus: list[int]
    # workers the probes of a stage with its own mix (the idle stage) rotated over, one
    # kept-alive connection each; 0: they went over the shared pool (not asked, or no worker
    # could be reached)
    probe_workers_pinned: int = 0
    out: str | None = None


def _ok(status: int) -> bool:
    return 200 <= status < 400


def summarize(
    record: Record,
    stages: Sequence[Stage],
    *,
    end: float,
    origin: float,
    cpu_s: float,
    start_late_s: float = 0.0,
    stopped_by: str | None = None,
    loop: str = "asyncio",
    cpus: Sequence[int] = (),
    probe_workers_pinned: int = 0,
) -> LoadSummary:
    """The summary of a finished record; pure, so its arithmetic has tests of its own.

    Achieved rate of a stage: OK responses to requests due in that stage, divided by the part
    of the stage that ran (all of it unless the run was stopped early).
    """
    t0 = record.t0
    statuses = record.status
    late = [
        s - t0 - off for s, off in zip(record.sent, record.offset, strict=True) if not math.isnan(s)
    ]
    latency = [
        d - t0 - off
        for d, off, st in zip(record.done, record.offset, statuses, strict=True)
        if _ok(st) and not math.isnan(d)
    ]
    kinds = Counter(_error_kind(e) for e in record.errors.values())
    per_stage: list[StageSummary] = []
    for index, (stage, start) in enumerate(zip(stages, stage_starts(stages), strict=True)):
        members = [st for st, sx in zip(statuses, record.stage, strict=True) if sx == index]
        ok = sum(1 for st in members if _ok(st))
        elapsed = stage.duration_s
        if stopped_by is not None:
            elapsed = min(elapsed, max(0.0, end - (t0 + start)))
        per_stage.append(
            StageSummary(
                phase=stage.phase,
                rate=stage.rate,
                duration_s=stage.duration_s,
                start_s=t0 + start - origin,
                elapsed_s=elapsed,
                requests=len(members),
                ok=ok,
                errors=len(members) - ok,
                achieved_rps=ok / elapsed if elapsed > 0 else None,
            )
        )
    lat, lateness = sorted(latency), spread(late).scaled(1000)
    ms = 1000.0

    def pct(q: float) -> float | None:
        value = percentile(lat, q)
        return None if value is None else value * ms

    wall = end - t0
    ok_total = sum(1 for st in statuses if _ok(st))
    return LoadSummary(
        requests=len(record),
        sent=len(late),
        completed=sum(1 for st in statuses if st > 0),
        ok=ok_total,
        errors=len(record) - ok_total,
        overload=kinds.get("overload", 0),
        cancelled=kinds.get("cancelled", 0),
        error_kinds=dict(kinds.most_common(10)),
        stages=per_stage,
        late_ms_p50=lateness.p50,
        late_ms_p99=lateness.p99,
        late_ms_max=lateness.max,
        latency_ms_p50=pct(50),
        latency_ms_p95=pct(95),
        latency_ms_p99=pct(99),
        t0_s=t0 - origin,
        end_s=end - origin,
        wall_s=wall,
        cpu_s=cpu_s,
        cpu_pct=100 * cpu_s / wall if wall > 0 else 0.0,
        start_late_s=start_late_s,
        stopped_by=stopped_by,
        loop=loop,
        cpus=list(cpus),
        probe_workers_pinned=probe_workers_pinned,
    )


def _error_kind(error: str) -> str:
    """The kind of an error text (its part before the first colon), for counting."""
    return error.split(":", 1)[0]
