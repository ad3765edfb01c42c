"""Latency: does the leaner allocator cost it? p50, p95, p99 per allocator.

Chart {{ chart.latency }}; sentences {{ say.latency }}, {{ say.latency_median }}; values
`p50.*`, `p95.*`, `p99.*`, `latency.rule`, `loadgen.send_late_p99`, `requests.*`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.aggregate import Results
from bench.report.charts import latency as chart
from bench.report.charts.figure import Names, repeats_phrase
from bench.report.method import method_of
from bench.report.prose import latency
from bench.report.prose.rankings import extreme_values, value_band
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import LATENCY_ABS_MS, LATENCY_REL, latency_verdict
from bench.report.units import NOT_MEASURED, fmt_count, fmt_ms, fmt_pct, md_safe

__all__ = ["LatencySection"]


@dataclass(frozen=True)
class Latency:
    run: Run
    full: Results
    res: Results


class LatencySection(Section[Latency]):
    name = "latency"
    title = "Does the leaner allocator cost latency?"

    def compute(self, loaded: Loaded) -> Latency:
        return Latency(loaded.run, loaded.full, loaded.res)

    def values(self, data: Latency) -> dict[str, str]:
        return _latency_values(data.res)

    def sentences(self, data: Latency) -> Entries:
        return {
            "latency": lambda: latency.latency(data.res),
            "latency_median": lambda: latency.latency_median(data.res),
        }

    def charts(self, data: Latency) -> Entries:
        names = Names.of(data.full)
        caption = latency_caption(data.run, data.full, names)
        return {"latency": lambda: chart.latency(data.full, names, caption)}


def latency_caption(run: Run, res: Results, names: Names) -> str:
    """What the latency chart encodes, in words (the takeaways are the sentences)."""
    reps = repeats_phrase(((r.p50, r.p95, r.p99), r.excluded) for r in res.service.values())
    recorded = method_of(run.manifest).latency_failures
    failures = f" ({md_safe(recorded)})" if recorded else ""
    service = [n for n in res.names if n in res.service]
    return (
        f"Request latency per allocator ({reps}), counted from each "
        f"request's scheduled send time{failures}: circle p50, square p95, triangle p99."
        + names.aa_sentence(service, "in hollow marks")
        + names.variant_sentence(service, "with lighter marks")
    )


def _latency_values(res: Results) -> dict[str, str]:
    out: dict[str, str] = {}
    for pct in ("p50", "p95", "p99"):
        items = {n: getattr(r, pct) for n, r in res.service.items() if getattr(r, pct)}
        out[f"{pct}.band"] = value_band(items, fmt_ms)
        out.update(
            extreme_values(
                items,
                f"{pct}.",
                fmt_ms,
                best_low=True,
                best="lowest",
                worst="highest",
                unit_key="ms",
            )
        )
        verdict = latency_verdict(items)
        out[f"{pct}.verdict"] = (
            NOT_MEASURED if verdict is None else "moved" if verdict.moved else "barely moved"
        )
    out["latency.rule"] = (
        f"within {fmt_pct(LATENCY_REL)} or {LATENCY_ABS_MS:g} ms of the lowest, whichever is larger"
    )
    lates = [a.send_late_p99_ms for a in res.allocators if a.send_late_p99_ms is not None]
    out["loadgen.send_late_p99"] = fmt_ms(max(lates)) if lates else "not recorded"
    out["requests.total"] = fmt_count(sum(r.requests for r in res.service.values()))
    out["requests.errors"] = fmt_count(sum(r.errors for r in res.service.values()))
    return out
