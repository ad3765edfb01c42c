"""The staircase: memory over time per allocator, and the live payload the program held.

Chart {{ chart.staircase }}; sentences {{ say.staircase }}, {{ say.live_payload }}; values
`live.*` (the median across allocators of what the program held, and when it filled).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.aggregate import Results
from bench.report.charts import staircase as chart
from bench.report.charts.figure import Names
from bench.report.live import FILL_SHARE, LivePayload, fill_text
from bench.report.method import Method
from bench.report.prose import memory
from bench.report.prose.rankings import median_center
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.units import fmt_duration, fmt_mb, fmt_pct

__all__ = ["StaircaseSection"]


@dataclass(frozen=True)
class Staircase:
    run: Run
    full: Results
    res: Results
    live: LivePayload
    method: Method


class StaircaseSection(Section[Staircase]):
    name = "staircase"
    title = "Why memory climbs"

    def compute(self, loaded: Loaded) -> Staircase:
        return Staircase(loaded.run, loaded.full, loaded.res, loaded.live, loaded.method)

    def values(self, data: Staircase) -> dict[str, str]:
        return _live_values(data.res, data.live, data.method)

    def sentences(self, data: Staircase) -> Entries:
        return {
            "staircase": lambda: memory.staircase(data.run, data.res),
            "live_payload": lambda: memory.live_sentence(data.res, data.live, data.method),
        }

    def charts(self, data: Staircase) -> Entries:
        names = Names.of(data.full)
        return {"staircase": lambda: chart.staircase(data.run, data.full, names, data.live)}


def _live_values(res: Results, live: LivePayload, method: Method) -> dict[str, str]:
    """The live payload the program held (median across allocators) and when it filled."""
    svc = list(res.service.values())
    estimate = method.live_set_fill_s
    return {
        "live.ready.mb": fmt_mb(median_center([r.live_ready for r in svc])),
        "live.load_end.mb": fmt_mb(median_center([r.live_load_end for r in svc])),
        "live.idle_end.mb": fmt_mb(median_center([r.live_idle_end for r in svc])),
        "live.fill_estimate": "not recorded"
        if estimate is None
        else f"{fmt_duration(estimate)} of load",
        "live.fill_measured": fill_text(live.fill_measured_s),
        "live.fill_share": fmt_pct(FILL_SHARE),
    }
