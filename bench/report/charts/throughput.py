"""The C++ control's throughput per allocator, on the measure that ranks it
(prose.control_measure), both measures in its table.

The bar is the mean of the clean repeats and the whisker its 95% interval, the same interval
the article's ties are decided by; the slowest and fastest repeats stay in the table. The
value axis is figure.value_axis, whose labels cannot collide at any range of the data.
"""

from __future__ import annotations

import altair as alt

from bench.report.aggregate import Results, control_measure
from bench.report.charts.figure import (
    INTERVAL_HELP,
    WIDTH,
    Names,
    bounds,
    by_kind,
    data_summary,
    data_table,
    finish,
    interval_text,
    no_chart,
    repeats_text,
    value_axis,
    whiskers,
)
from bench.report.datatable import Column
from bench.report.svg import INK
from bench.report.units import fmt_mops, fmt_mops_cpu

__all__ = ["PLOT_WIDTH", "throughput"]

#: Width of the throughput chart's plot area in pixels.
PLOT_WIDTH = WIDTH - 120


def throughput(res: Results, names: Names, caption: str) -> str:
    """Control throughput on the measure that ranks it (prose.control_measure), both in the
    table: per wall-clock second, and per CPU-second of the churn."""
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    speed = {n: getattr(c, key) for n, c in res.control.items() if getattr(c, key)}
    fmt = fmt_mops_cpu if measure == "cpu" else fmt_mops
    if not speed:
        return no_chart("throughput", "the C++ control was not run or recorded no throughput.")
    order = res.grouped(sorted(speed, key=lambda n: (-speed[n].center, n)))
    rows = []
    for n in order:
        s = speed[n]
        iv = bounds(s, 1e6)
        rows.append(
            {
                "allocator": names.label(n),
                "again": names.is_again(n),
                "variant": names.is_variant(n),
                "mean": s.center / 1e6,
                "lo": iv[0] if iv else None,
                "hi": iv[1] if iv else None,
                "text_x": max(s.center / 1e6, iv[1] if iv else 0.0),
                "label": fmt_mops(s.center).replace("/s", "")
                if measure == "cpu"
                else fmt_mops(s.center),
            }
        )
    title = (
        "allocations per CPU-second of churn (millions)"
        if measure == "cpu"
        else "allocations per second (millions)"
    )
    labels = [names.label(n) for n in order]
    y = alt.Y("allocator:N", sort=labels, title=None)
    base = alt.Chart(alt.Data(values=rows)).encode(y=y)
    top = max(r["text_x"] for r in rows) or 1.0
    xs = alt.Scale(domain=[0, top * 1.35], nice=False)
    colour = alt.Color("allocator:N", scale=names.scale(order), legend=None)
    chart = alt.layer(
        base.mark_bar(height=16, strokeWidth=1.5).encode(
            x=alt.X("mean:Q", scale=xs, axis=value_axis(title, PLOT_WIDTH)),
            color=colour,
            stroke=colour,
            # the A/A duplicate: hollow with a dashed outline, beside its pair's solid bar;
            # a variant: a lighter fill in its base's colour
            strokeDash=by_kind([1, 0], again=[4, 2], variant=[1, 0]),
            fillOpacity=by_kind(1.0, again=0.15, variant=0.45),
        ),
        *whiskers(rows, y, title, xs),
        base.mark_text(fill=INK, align="left", dx=7, fontSize=12).encode(
            x=alt.X("text_x:Q", scale=xs), text="label:N"
        ),
    ).properties(width=PLOT_WIDTH, height=max(60, 32 * len(order)))

    def cpu(n: str) -> str:
        c = res.control[n].allocs_per_cpu_s
        return fmt_mops_cpu(c.center) if c else "not recorded"

    def wall(n: str) -> str:
        w = res.control[n].allocs_per_s
        return fmt_mops(w.center) if w else "not recorded"

    whisk = any(r["lo"] is not None for r in rows)
    table = data_table(
        [
            Column("allocator"),
            Column("per second, mean", True),
            Column("per CPU-second, mean", True, "allocations per CPU-second of the churn"),
        ],
        [[names.row(n), wall(n), cpu(n)] for n in order],
        [
            Column("95% interval", True, f"{INTERVAL_HELP}, on the charted measure"),
            Column("slowest repeat", True),
            Column("fastest repeat", True),
            Column("repeats", True, "clean repeats the mean is built from"),
        ],
        [
            [
                interval_text(s, fmt),
                fmt(s.low),
                fmt(s.high),
                repeats_text(s.n, res.control[n].excluded),
            ]
            for n in order
            for s in [speed[n]]
        ],
        drawn=whisk,
    )
    label = (
        f"Bar chart of C++ control {title}, fastest first"
        + (", each bar with a whisker for the 95% interval of its mean" if whisk else "")
        + ": "
        + "; ".join(f"{r['allocator']} {r['label']}" for r in rows)
    )
    return finish(
        "throughput",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary=data_summary("the throughput chart", whisk),
    )
