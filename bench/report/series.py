"""The memory time series: one line per allocator, phase spans, and honest downsampling.

A default study samples once a second for 13 minutes per allocator. Drawing every point is
wasteful (page weight) and Altair refuses more than 5,000 rows, so a series is thinned by
keeping the points where the value changes: the staircase's steps survive, its flat treads
shrink to their two ends.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PHASE_ORDER",
    "PhaseSpan",
    "first_repeat_series",
    "keep_changes",
    "phase_spans",
    "thin",
    "value_at",
]

#: Phases in time order: the service's, then the control's.
PHASE_ORDER = ("warmup", "load", "idle", "reclaim", "fill", "churn")

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
    line up to within a sample; the median hides a late sample of one of them.
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
        spans.append(PhaseSpan(phase, statistics.median(starts), statistics.median(ends)))
    return spans


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
