"""Request latency percentiles (p50, p95, p99) per allocator, from each request's scheduled
send time, each with the 95% interval of its mean across repeats as a whisker (the interval
the article's "barely moved" and its ties are judged by). The A/A duplicate's marks are
hollow, so its drift from its pair reads as noise, not as an allocator.
"""

from __future__ import annotations

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
    value_axis,
    whiskers,
)
from bench.report.datatable import Column
from bench.report.stats import Sample
from bench.report.svg import INK
from bench.report.units import fmt_ms

__all__ = ["PERCENTILES", "latency"]

PERCENTILES = ("p50", "p95", "p99")


def _pct(r: ServiceResult, p: str) -> Sample:
    s = getattr(r, p)
    assert s is not None  # latency() keeps only results with every percentile
    return s


def _kind(point: dict[str, Any]) -> str:
    return "again" if point["again"] else "variant" if point["variant"] else "stock"


def latency(res: Results, names: Names, caption: str) -> str:
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
