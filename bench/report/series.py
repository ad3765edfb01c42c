"""The time series: memory per allocator, the live payload, phase spans, honest downsampling.

A default study samples once a second for 13 minutes per allocator. Drawing every point is
wasteful (page weight) and Altair refuses more than 5,000 rows, so a series is thinned by
keeping the points where the value changes: the staircase's steps survive, its flat treads
shrink to their two ends.

The live payload (what the program itself holds) is rebuilt from the service's answers: each
carries the answering worker and that worker's live bytes after the request, so the service's
payload at any moment is the sum of every worker's latest answer.
"""

from __future__ import annotations

import bisect
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PHASE_ORDER",
    "PhaseSpan",
    "close_gaps",
    "first_repeat_series",
    "first_reach",
    "keep_changes",
    "latest_at",
    "live_payload",
    "median_line",
    "phase_spans",
    "thin",
    "value_at",
]

#: Phases in time order: the service's, then the control's.
PHASE_ORDER = ("start", "warmup", "load", "idle", "reclaim", "fill", "churn", "done")

Point = tuple[float, float]


@dataclass(frozen=True)
class PhaseSpan:
    """Where a phase starts and ends on the chart's time axis (seconds)."""

    phase: str
    start_s: float
    end_s: float


def first_repeat_series(
    rows: Iterable[dict[str, Any]], experiment: str, allocators: Sequence[str]
) -> dict[str, list[Point]]:
    """(t_s, anon_bytes) of the first repeat of each allocator, in time order."""
    wanted = set(allocators)
    by: dict[tuple[str, int], list[Point]] = defaultdict(list)
    for r in rows:
        if r.get("experiment") != experiment or r.get("allocator") not in wanted:
            continue
        if r.get("t_s") is None or r.get("anon_bytes") is None:
            continue
        by[(r["allocator"], int(r.get("repeat") or 0))].append(
            (float(r["t_s"]), float(r["anon_bytes"]))
        )
    out: dict[str, list[Point]] = {}
    for name in allocators:
        repeats = sorted(rep for (a, rep) in by if a == name)
        if repeats:
            out[name] = sorted(by[(name, repeats[0])])
    return out


def phase_spans(rows: Iterable[dict[str, Any]], experiment: str) -> list[PhaseSpan]:
    """Each phase's typical span: the median over allocators of its first and last sample.

    Allocators run one after another, each on its own clock starting at 0, so their phases
    line up to within a sample; the median hides a late sample of one of them. An idle that
    ends once memory has settled ends at a different time for each allocator: its span runs
    to the longest, so no allocator's idle is drawn outside it.
    """
    first: dict[tuple[str, str, int], float] = {}
    last: dict[tuple[str, str, int], float] = {}
    for r in rows:
        if r.get("experiment") != experiment or r.get("t_s") is None or not r.get("phase"):
            continue
        key = (str(r["phase"]), str(r.get("allocator")), int(r.get("repeat") or 0))
        t = float(r["t_s"])
        first[key] = min(t, first.get(key, t))
        last[key] = max(t, last.get(key, t))
    phases = {k[0] for k in first}
    spans = []
    for phase in sorted(
        phases, key=lambda p: (PHASE_ORDER.index(p) if p in PHASE_ORDER else 99, p)
    ):
        starts = [v for k, v in first.items() if k[0] == phase]
        ends = [v for k, v in last.items() if k[0] == phase]
        start = statistics.median(starts)
        end = max(ends) if phase == "idle" else statistics.median(ends)
        if spans and spans[-1].phase == "idle" and start < spans[-1].end_s:
            start, end = spans[-1].end_s, max(end, spans[-1].end_s)  # after the longest idle
        spans.append(PhaseSpan(phase, start, end))
    return spans


def close_gaps(spans: Sequence[PhaseSpan]) -> list[PhaseSpan]:
    """Spans that meet: each runs on to where the next one starts.

    phase_spans measures a phase from its first to its last sample, so two neighbouring
    phases leave a sample interval between them; shaded as they are, that gap reads as a
    phase of its own.
    """
    out = list(spans)
    for i in range(len(out) - 1):
        nxt = out[i + 1]
        if nxt.start_s > out[i].end_s:
            out[i] = PhaseSpan(out[i].phase, out[i].start_s, nxt.start_s)
    return out


def keep_changes(points: Sequence[Point], tolerance: float = 0.0) -> list[Point]:
    """Points where the value moves by more than tolerance, each with the point before it.

    Keeping the last point of a flat run as well as the first point after it preserves the
    shape of a step exactly; the first and last points are always kept.
    """
    if len(points) <= 2:
        return list(points)
    kept = [points[0]]
    anchor = points[0][1]
    for i in range(1, len(points) - 1):
        t, v = points[i]
        if abs(v - anchor) > tolerance:
            if kept[-1] != points[i - 1]:
                kept.append(points[i - 1])
            kept.append(points[i])
            anchor = v
    kept.append(points[-1])
    return kept


def thin(points: Sequence[Point], budget: int) -> list[Point]:
    """At most `budget` points: exact changes first, then growing tolerances, then a stride."""
    if len(points) <= budget:
        return list(points)
    values = [v for _, v in points]
    span = (max(values) - min(values)) or 1.0
    for frac in (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05):
        kept = keep_changes(points, span * frac)
        if len(kept) <= budget:
            return kept
    step = -(-len(kept) // budget)
    strided = kept[::step]
    if strided[-1] != kept[-1]:
        strided.append(kept[-1])
    return strided


def value_at(points: Sequence[Point], start: float, end: float) -> float | None:
    """Median value of the samples within [start, end]; None when there are none."""
    vs = [v for t, v in points if start <= t <= end]
    return float(statistics.median(vs)) if vs else None


def live_payload(
    answers: Iterable[tuple[float, int, int]],
    ready: Mapping[int, int],
    ready_s: float | None,
    end_s: float | None = None,
) -> list[Point]:
    """The service's live payload over time: (t_s, bytes held by all workers together).

    `answers` are (done_s, worker pid, that worker's live bytes after the request) of one
    repeat; `ready` the workers' live bytes when the service was ready (the manifest's
    live_set), recorded at `ready_s`. At each answer the value is the sum over workers of each
    one's latest figure: a worker that has not answered yet still holds what it held at ready
    (a worker missing from `ready` counts from its first answer on). The line ends flat at
    `end_s` when given: after the last answer nothing reported a change.
    """
    latest = dict(ready)
    total = sum(latest.values())
    out: list[Point] = []
    if ready and ready_s is not None:
        out.append((float(ready_s), float(total)))
    for t, worker, nbytes in sorted(answers):
        total += nbytes - latest.get(worker, 0)
        latest[worker] = nbytes
        out.append((float(t), float(total)))
    if out and end_s is not None and end_s > out[-1][0]:
        out.append((float(end_s), out[-1][1]))
    return out


def latest_at(points: Sequence[Point], t: float) -> float | None:
    """The value of a step line at time t: its last point at or before t (None before it)."""
    i = bisect.bisect_right([p[0] for p in points], t)
    return points[i - 1][1] if i else None


def median_line(lines: Mapping[str, Sequence[Point]], steps: int = 400) -> list[Point]:
    """One line through many step lines: at each of `steps` even times, the median of the
    lines that have started by then.

    Every allocator runs the same seeded workload, so their live payloads differ only by which
    worker happened to answer which call; the median shows the one payload they share.
    """
    lines = {k: v for k, v in lines.items() if v}
    if not lines:
        return []
    if len(lines) == 1:
        return list(next(iter(lines.values())))
    t0 = min(v[0][0] for v in lines.values())
    t1 = max(v[-1][0] for v in lines.values())
    times = [t0 + (t1 - t0) * i / steps for i in range(steps + 1)] if t1 > t0 else [t0]
    keyed = {k: ([p[0] for p in v], v) for k, v in lines.items()}
    out = []
    for t in times:
        vals = []
        for ts, pts in keyed.values():
            i = bisect.bisect_right(ts, t)
            if i:
                vals.append(pts[i - 1][1])
        if vals:
            out.append((t, float(statistics.median(vals))))
    return out


def first_reach(points: Sequence[Point], share: float, of: float) -> float | None:
    """The first time a line reaches `share` of the value `of` (None if it never does)."""
    target = share * of
    return next((t for t, v in points if v >= target), None)
