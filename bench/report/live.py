"""The live payload: what the program itself held, over time, and when its live set filled.

The overhead of an allocator is only visible against what the program holds. The live set is
built by traffic, so that payload grows during load and then stays: rebuilt here from the
service's answers (each names its worker and that worker's live bytes after the call), starting
from the workers' own figures when the service was ready (the manifest's live_set); a worker
recycled after its limit of requests leaves the sum when it is replaced. Every
allocator runs the same seeded workload, so the article draws one line, the median across
allocators, and says so.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.report import series as ser
from bench.report.recorded_method import live_records, ready_workers
from bench.report.runfolders import Run
from bench.report.units import NOT_MEASURED, fmt_duration

__all__ = ["FILL_SHARE", "LivePayload", "fill_text", "fill_time", "live_payload", "phase_span"]

#: The live set counts as filled when it first reaches this share of its end-of-load value.
FILL_SHARE = 0.95

Point = tuple[float, float]


@dataclass(frozen=True)
class LivePayload:
    """The live payload of one run (first repeat of each allocator)."""

    #: per allocator: (t_s, bytes held by all workers) from ready to the end of idle
    lines: dict[str, list[Point]]
    #: the median across allocators, on an even time grid (one line for the chart)
    line: list[Point]
    #: per allocator: seconds into the load phase when the payload first reached FILL_SHARE
    #: of its end-of-load value (negative: during warm-up; None: not measurable)
    fill_s: dict[str, float]
    #: the answers the lines were built from
    points: int = 0

    @property
    def fill_measured_s(self) -> float | None:
        """The median over allocators of the measured fill time."""
        return statistics.median(self.fill_s.values()) if self.fill_s else None


def phase_span(
    run: Run, name: str, repeat: int, phase: str, experiment: str = "service"
) -> tuple[float, float] | None:
    """Where one phase of one repeat ran: the manifest's record, else the memory samples."""
    for entry in run.manifest.get("allocators") or []:
        if not isinstance(entry, dict) or entry.get("name") != name:
            continue
        for p in (entry.get("phases") or {}).get(experiment) or []:
            if (
                isinstance(p, dict)
                and p.get("phase") == phase
                and int(p.get("repeat") or 0) == repeat
                and p.get("start_s") is not None
                and p.get("end_s") is not None
            ):
                return float(p["start_s"]), float(p["end_s"])
    ts = [
        float(r["t_s"])
        for r in run.memory
        if r.get("experiment") == experiment
        and r.get("allocator") == name
        and int(r.get("repeat") or 0) == repeat
        and r.get("phase") == phase
        and r.get("t_s") is not None
    ]
    return (min(ts), max(ts)) if ts else None


def _end_s(run: Run, name: str, repeat: int, records: dict[str, dict[str, Any]]) -> float | None:
    """Where the line should end: the end of idle (the payload does not change after load)."""
    idle = phase_span(run, name, repeat, "idle")
    if idle is not None:
        return idle[1]
    rec = records.get("idle_end") or records.get("load_end") or {}
    return float(rec["t_s"]) if isinstance(rec.get("t_s"), int | float) else None


def _readings(records: dict[str, dict[str, Any]]) -> list[tuple[float, int, int]]:
    """The workers' own /stats figures at the end of load and of idle, as answers: the line
    then shows what expired in idle even where no request reported it (a silent idle, or a
    run made before /health carried the live payload)."""
    out = []
    for at in ("load_end", "idle_end"):
        rec = records.get(at) or {}
        t = rec.get("t_s")
        if not isinstance(t, int | float):
            continue
        out += [
            (float(t), int(w["pid"]), int(w["live_bytes"]))
            for w in rec.get("workers") or []
            if isinstance(w, dict) and w.get("pid") is not None and w.get("live_bytes") is not None
        ]
    return out


def _retired(run: Run, name: str, repeat: int) -> list[tuple[float, int, int]]:
    """A recycled worker's live set is gone with it: an answer of 0 bytes from its pid when the
    supervisor found it gone (after its last answer), so the sum forgets it."""
    return [
        (float(r["replaced_s"]), int(r["old_pid"]), 0)
        for r in run.restarts
        if r.get("allocator") == name
        and int(r.get("repeat") or 0) == repeat
        and r.get("replaced_s") is not None
        and r.get("old_pid") is not None
    ]


def fill_time(points: Sequence[Point], load: tuple[float, float] | None) -> float | None:
    """Seconds into load when a payload line first reached FILL_SHARE of its end-of-load value."""
    if load is None or not points:
        return None
    end_value = ser.latest_at(points, load[1])
    if not end_value or end_value <= 0:
        return None
    reached = ser.first_reach(points, FILL_SHARE, end_value)
    return None if reached is None else reached - load[0]


def live_payload(run: Run, names: Sequence[str]) -> LivePayload:
    """The live payload of each named allocator's first repeat, and the line they share."""
    lines: dict[str, list[Point]] = {}
    fills: dict[str, float] = {}
    points = 0
    for name in names:
        repeats = sorted(rep for (a, rep) in run.answers if a == name)
        if not repeats:
            continue
        rep = repeats[0]
        ready, ready_s = ready_workers(run.manifest, name, rep)
        records = live_records(run.manifest, name, rep)
        end_s = _end_s(run, name, rep, records)
        answers = [*run.answers[(name, rep)], *_readings(records), *_retired(run, name, rep)]
        line = ser.live_payload(answers, ready, ready_s, end_s)
        if not line:
            continue
        lines[name] = line
        points += len(run.answers[(name, rep)])
        fill = fill_time(line, phase_span(run, name, rep, "load"))
        if fill is not None:
            fills[name] = fill
    return LivePayload(lines=lines, line=ser.median_line(lines), fill_s=fills, points=points)


def fill_text(seconds: float | None) -> str:
    """When the live set filled, in seconds of load ("during warm-up" if it filled before)."""
    if seconds is None:
        return NOT_MEASURED
    if seconds < 0:
        return "during warm-up, before the load began"
    return f"{fmt_duration(seconds)} into the load"
