"""Latency: does the leaner allocator cost it? p50, p95, p99 per allocator.

Chart {{ chart.latency }}; sentences {{ say.latency }}, {{ say.latency_median }}; values
`p50.*`, `p95.*`, `p99.*`, `latency.rule`, `loadgen.send_late_p99`, `requests.*`.

The sentences say whether allocator choice moved p99 and p50 beyond the band we treat as
noise (bench.report.stats.latency_verdict). The chart gives the percentiles per allocator,
from each request's scheduled send time, each with the 95% interval of its mean across
repeats as a whisker (the interval the article's "barely moved" and its ties are judged by).
The A/A duplicate's marks are hollow, so its drift from its pair reads as noise, not as an
allocator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import altair as alt

from bench.report.aggregate import Results, ServiceResult
from bench.report.charts.figure import (
    INTERVAL_HELP,
    WIDTH,
    Names,
    bounds,
    data_summary,
    data_table,
    finish,
    interval_text,
    no_chart,
    repeats_phrase,
    value_axis,
    whiskers,
)
from bench.report.datatable import Column
from bench.report.prose.rankings import extreme_values, noisy_text, value_band
from bench.report.recorded_method import method_of
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import LATENCY_ABS_MS, LATENCY_REL, Sample, latency_verdict
from bench.report.svg import INK
from bench.report.units import NOT_MEASURED, fmt_count, fmt_ms, fmt_pct, fmt_ratio, md_safe

__all__ = [
    "PERCENTILES",
    "LatencySection",
    "latency_caption",
    "latency_chart",
    "latency_median",
    "latency_sentence",
]


def latency_sentence(res: Results) -> str:
    """Whether allocator choice moved p99 beyond the band we treat as noise."""
    items = {n: r.p99 for n, r in res.service.items() if r.p99}
    v = latency_verdict(items)
    if v is None:
        return "Latency needs at least two measured allocators to compare."
    span = (
        f"p99 ranged from {fmt_ms(v.low_ms)} ({md_safe(v.lowest)}) to "
        f"{fmt_ms(v.high_ms)} ({md_safe(v.highest)})"
    )
    repeated = items[v.lowest].interval is not None and items[v.highest].interval is not None
    shaky = noisy_text(items, fmt_ms)
    if v.high_ms - v.low_ms <= v.band_ms:
        head = (
            f"Allocator choice barely moved tail latency: {span}, a gap within the "
            f"{fmt_ms(v.band_ms)} we treat as noise."
        )
    elif not v.moved:
        head = (
            f"Tail latency differed, {span}, but no more than the repeats disagreed among "
            "themselves (the gap lies within their 95% intervals or the A/A pair's drift), so "
            "this run cannot put it down to the allocator."
        )
    else:
        beyond = (
            f"beyond the {fmt_ms(v.band_ms)} we treat as noise and outside the two values' "
            "95% intervals"
            if repeated
            else f"beyond the {fmt_ms(v.band_ms)} we treat as noise"
        )
        head = (
            f"Allocator choice moved tail latency: {span}, {fmt_ratio(v.ratio)} the lowest, "
            f"{beyond}."
        )
    return " ".join(t for t in (head, shaky) if t)


def latency_median(res: Results) -> str:
    items = {n: r.p50 for n, r in res.service.items() if r.p50}
    v = latency_verdict(items)
    if v is None:
        return ""
    word = "moved" if v.moved else "barely moved"
    return (
        f"At the median the allocators {word}: p50 ran from {fmt_ms(v.low_ms)} to "
        f"{fmt_ms(v.high_ms)}."
    )


PERCENTILES = ("p50", "p95", "p99")


def _pct(r: ServiceResult, p: str) -> Sample:
    s = getattr(r, p)
    assert s is not None  # latency() keeps only results with every percentile
    return s


def _kind(point: dict[str, Any]) -> str:
    return "again" if point["again"] else "variant" if point["variant"] else "stock"


def latency_chart(res: Results, names: Names, caption: str) -> str:
    items = {n: r for n, r in res.service.items() if r.p50 and r.p95 and r.p99}
    if not items:
        return no_chart("latency", "the run recorded no latency percentiles.")
    order = res.grouped(sorted(items, key=lambda n: (_pct(items[n], "p99").center, n)))
    points: list[dict[str, Any]] = []
    for n in order:
        for p in PERCENTILES:
            s = _pct(items[n], p)
            iv = bounds(s)
            points.append(
                {
                    "allocator": names.label(n),
                    "pct": p,
                    "ms": s.center,
                    "lo": iv[0] if iv else None,
                    "hi": iv[1] if iv else None,
                    "again": names.is_again(n),
                    "variant": names.is_variant(n),
                }
            )
    plot_width = WIDTH - 160
    # one band per allocator, ruled off from the next, holding a row per percentile so that
    # the three whiskers never lie over one another
    y = alt.Y(
        "allocator:N",
        sort=[names.label(n) for n in order],
        title=None,
        axis=alt.Axis(tickBand="extent", grid=True),
    )
    offset = alt.YOffset("pct:N", scale=alt.Scale(domain=list(PERCENTILES), paddingOuter=0.6))
    color = alt.Color("allocator:N", scale=names.scale(order), legend=None)
    title = "latency from scheduled send (ms)"
    xs = alt.Scale(zero=True, domainMin=0)
    x = alt.X("ms:Q", scale=xs, axis=value_axis(title, plot_width))
    shape = alt.Shape(
        "pct:N",
        title="percentile",
        scale=alt.Scale(domain=list(PERCENTILES), range=["circle", "square", "triangle-up"]),
        legend=alt.Legend(orient="right", symbolFillColor=INK),
    )
    layers: list[Any] = whiskers(
        points, y, title, xs, offset=offset, thickness=1.1, ticks={"size": 6}
    )
    # the A/A duplicate hollow: the second run of its pair, not another allocator; a
    # variant lighter, in its base's colour
    styles = {"stock": (True, 1.0), "again": (False, 1.0), "variant": (True, 0.5)}
    for kind, (filled, opacity) in styles.items():
        mine = [p for p in points if _kind(p) == kind]
        if mine:
            layers.append(
                alt.Chart(alt.Data(values=mine))
                .mark_point(filled=filled, size=80, opacity=opacity, strokeWidth=1.8)
                .encode(y=y, yOffset=offset, x=x, color=color, shape=shape)
            )
    chart = alt.layer(*layers).properties(width=plot_width, height=max(60, 42 * len(order)))

    def cell(n: str, p: str) -> str:
        return fmt_ms(_pct(items[n], p).center)

    whisk = any(p["lo"] is not None for p in points)
    table = data_table(
        [Column("allocator"), *(Column(p, True) for p in PERCENTILES)],
        [[names.row(n), *(cell(n, p) for p in PERCENTILES)] for n in order],
        [Column(f"{p}, 95% interval", True, INTERVAL_HELP) for p in PERCENTILES],
        [[interval_text(_pct(items[n], p), fmt_ms) for p in PERCENTILES] for n in order],
        drawn=whisk,
    )
    label = (
        "Dot plot of request latency percentiles p50, p95 and p99 per allocator"
        + (", each with a whisker for its 95% interval" if whisk else "")
        + ": "
        + "; ".join(f"{names.label(n)} p99 {cell(n, 'p99')}" for n in order)
    )
    return finish(
        "latency",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary=data_summary("the latency chart", whisk),
    )


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
            "latency": lambda: latency_sentence(data.res),
            "latency_median": lambda: latency_median(data.res),
        }

    def charts(self, data: Latency) -> Entries:
        names = Names.of(data.full)
        caption = latency_caption(data.run, data.full, names)
        return {"latency": lambda: latency_chart(data.full, names, caption)}


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
