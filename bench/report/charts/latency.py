"""Request latency percentiles (p50, p95, p99) per allocator, from each request's scheduled
send time.
"""

from __future__ import annotations

import altair as alt

from bench.report.aggregate import Results
from bench.report.charts.figure import WIDTH, colour_scale, finish, no_chart
from bench.report.datatable import Column, html_table
from bench.report.svg import INK
from bench.report.units import fmt_ms

__all__ = ["latency"]


def latency(res: Results, palette: dict[str, str], caption: str) -> str:
    items = {n: r for n, r in res.service.items() if r.p50 and r.p95 and r.p99}
    if not items:
        return no_chart("latency", "the run recorded no latency percentiles.")
    order = sorted(items, key=lambda n: (items[n].p99.center, n))  # type: ignore[union-attr]
    points = [
        {"allocator": n, "pct": p, "ms": getattr(items[n], p).center}
        for n in order
        for p in ("p50", "p95", "p99")
    ]
    spans = [{"allocator": n, "lo": items[n].p50.center, "hi": items[n].p99.center} for n in order]
    y = alt.Y("allocator:N", sort=order, title=None)
    color = alt.Color("allocator:N", scale=colour_scale(order, palette), legend=None)
    chart = alt.layer(
        alt.Chart(alt.Data(values=spans))
        .mark_rule(strokeWidth=2, opacity=0.5)
        .encode(y=y, x="lo:Q", x2="hi:Q", color=color),
        alt.Chart(alt.Data(values=points))
        .mark_point(filled=True, size=80, opacity=1)
        .encode(
            y=y,
            x=alt.X("ms:Q", title="latency from scheduled send (ms)"),
            color=color,
            shape=alt.Shape(
                "pct:N",
                title="percentile",
                scale=alt.Scale(
                    domain=["p50", "p95", "p99"], range=["circle", "square", "triangle-up"]
                ),
                legend=alt.Legend(orient="right", symbolFillColor=INK),
            ),
        ),
    ).properties(width=WIDTH - 160, height=max(60, 32 * len(order)))
    table = html_table(
        [Column("allocator"), Column("p50", True), Column("p95", True), Column("p99", True)],
        [
            [
                n,
                fmt_ms(items[n].p50.center),
                fmt_ms(items[n].p95.center),  # type: ignore[union-attr]
                fmt_ms(items[n].p99.center),
            ]
            for n in order
        ],  # type: ignore[union-attr]
    )
    label = "Dot plot of request latency percentiles p50, p95 and p99 per allocator: " + "; ".join(
        f"{n} p99 {fmt_ms(items[n].p99.center)}" for n in order
    )  # type: ignore[union-attr]
    return finish(
        "latency",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the latency chart (median of repeats)",
    )
