"""The load's stages on a repeat's clock, and what each did (a watcher of the service repeat).

A spec may give its load as stages (`service.stages`: a burst, a trough, a second burst);
every load is at least one. The load generator labels each request with its stage and the
rate offered when it came due; this module places the stages on the repeat's clock from the
load phase's start (`spans`), labels the memory samples the same way (`tag`), and sums each
stage up (`stage_rows`, the `stages` table): memory at its start and end and its peak, p50
and p99 latency, failed requests, the rate achieved. The article's "After the burst"
(bench.report.sections.burst) reads that table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.experiments.watcher import Contribution, Launch, Quiet, RepeatEnd
from bench.load.schedule import planned_requests, rate_at
from bench.measure import runstats

if TYPE_CHECKING:
    from bench.load.schedule import Stage
    from bench.measure.sampler import Sample
    from bench.spec.models import ServiceSpec

__all__ = ["LoadStageWatcher", "Span", "saturated_stage", "spans", "stage_rows", "tag"]


@dataclass(frozen=True)
class Span:
    """One stage of the load on the repeat's clock: `number` 1, 2, ...; [start_s, end_s)."""

    number: int
    name: str
    plan: Stage
    start_s: float
    end_s: float

    def rate_at(self, t_s: float) -> float:
        """The rate the plan offered at `t_s` (within the span)."""
        return rate_at(self.plan, t_s - self.start_s)


def spans(service: ServiceSpec, load_start_s: float) -> list[Span]:
    """The load's stages back to back from the load phase's start (repeat clock, seconds)."""
    out, t = [], load_start_s
    for number, (name, plan) in enumerate(
        zip(service.stage_names, service.load_plan(), strict=True), start=1
    ):
        out.append(Span(number, name, plan, t, t + plan.duration_s))
        t += plan.duration_s
    return out


def span_at(found: list[Span], t_s: float) -> Span | None:
    """The stage under way at `t_s` (None: before the load or after it)."""
    for span in found:
        if span.start_s <= t_s < span.end_s:
            return span
    return None


def tag(rows: list[dict[str, Any]], found: list[Span]) -> list[dict[str, Any]]:
    """The memory rows, each given `stage` (its number, None outside the load) and
    `stage_rate` (the rate offered then); rows outside the load phase get None for both."""
    for row in rows:
        span = span_at(found, row["t_s"]) if row.get("phase") == "load" else None
        row["stage"] = span.number if span else None
        row["stage_rate"] = span.rate_at(row["t_s"]) if span else None
    return rows


def stage_rows(
    found: list[Span],
    samples: list[Sample],
    request_rows: list[dict[str, Any]],
    timeout_s: float,
    *,
    allocator: str,
    repeat: int,
    ended_s: float | None = None,
) -> list[dict[str, Any]]:
    """One row per stage that began: memory at its start, its end and its peak, latency,
    failures and the rate achieved. A stage cut short (the repeat ended, `ended_s`) counts
    only the part that ran."""
    out = []
    for span in found:
        end_s = span.end_s if ended_s is None else min(span.end_s, ended_s)
        if end_s <= span.start_s:
            break
        inside = [x.anon_bytes for x in samples if span.start_s <= x.t_s < end_s]
        before = [x.anon_bytes for x in samples if x.t_s <= span.start_s]
        rows = [r for r in request_rows if r.get("stage") == span.number]
        lat_ms, failed = runstats.charged_latencies_ms(rows, timeout_s)
        out.append(
            {
                "allocator": allocator,
                "repeat": repeat,
                "stage": span.number,
                "name": span.name,
                "rate": span.plan.rate,
                "ramp_s": span.plan.ramp_s,
                "start_s": round(span.start_s, 6),
                "end_s": round(end_s, 6),
                "start_anon_bytes": before[-1] if before else (inside[0] if inside else None),
                "end_anon_bytes": inside[-1] if inside else None,
                "peak_anon_bytes": max(inside) if inside else None,
                "requests": len(rows),
                "errors": failed,
                "achieved_rps": (len(rows) - failed) / (end_s - span.start_s),
                "p50_ms": runstats.percentile(lat_ms, 50),
                "p99_ms": runstats.percentile(lat_ms, 99),
            }
        )
    return out


def saturated_stage(found: list[Span], request_rows: list[dict[str, Any]]) -> str | None:
    """Why the app could not keep up in one stage of a load given as stages, or None.

    A burst the app cannot hold is averaged away by the load's mean rate: each stage is judged
    by the same rule as a whole load (runstats.saturation), on the requests due in it and the
    rate it offered (its ramp included). A load of one stage is the whole load's to judge."""
    if len(found) < 2:
        return None
    for span in found:
        rows = [r for r in request_rows if r.get("stage") == span.number]
        length = span.end_s - span.start_s
        if not rows or length <= 0:
            continue
        unanswered = sum(1 for r in rows if not r.get("status"))
        asked = planned_requests(span.plan) / length
        why = runstats.saturation((len(rows) - unanswered) / length, asked, unanswered, len(rows))
        if why is not None:
            return why.replace("saturated:", f"saturated in stage {span.name}:", 1)
    return None


class LoadStageWatcher(Quiet):
    """Adds the `stages` table: what each stage of the load did in this repeat."""

    def __init__(self, launch: Launch) -> None:
        self._service = launch.service
        self._alloc = launch.alloc.name
        self._repeat = launch.repeat

    def finish(self, end: RepeatEnd) -> Contribution:
        load = next((e for e in end.log.entries if e["phase"] == "load"), None)
        if load is None:
            return Contribution()
        rows = stage_rows(
            spans(self._service, load["start_s"]),
            end.samples,
            end.request_rows,
            self._service.request_timeout_s,
            allocator=self._alloc,
            repeat=self._repeat,
            ended_s=load["end_s"],
        )
        return Contribution(rows={"stages": rows})
