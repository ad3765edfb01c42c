"""The C++ control's throughput per allocator, on the measure that ranks it
(prose.control_measure), both measures in its table.
"""

from __future__ import annotations

import altair as alt

from bench.report.aggregate import Results
from bench.report.charts.figure import WIDTH, colour_scale, finish, no_chart
from bench.report.datatable import Column, html_table
from bench.report.prose.control import control_measure
from bench.report.svg import INK
from bench.report.units import fmt_mops, fmt_mops_cpu

__all__ = ["throughput"]


def throughput(res: Results, palette: dict[str, str], caption: str) -> str:
    """Control throughput on the measure that ranks it (prose.control_measure), both in the
    table: per wall-clock second, and per CPU-second of the churn."""
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    speed = {n: getattr(c, key) for n, c in res.control.items() if getattr(c, key)}
    fmt = fmt_mops_cpu if measure == "cpu" else fmt_mops
    if not speed:
        return no_chart("throughput", "the C++ control was not run or recorded no throughput.")
    order = sorted(speed, key=lambda n: (-speed[n].center, n))
    rows = [
        {
            "allocator": n,
            "mean": s.center / 1e6,
            "lo": s.low / 1e6,
            "hi": s.high / 1e6,
            "label": fmt_mops(s.center).replace("/s", "")
            if measure == "cpu"
            else fmt_mops(s.center),
        }
        for n in order
        for s in [speed[n]]
    ]
    title = (
        "allocations per CPU-second of churn (millions)"
        if measure == "cpu"
        else "allocations per second (millions)"
    )
    base = alt.Chart(alt.Data(values=rows)).encode(y=alt.Y("allocator:N", sort=order, title=None))
    top = max(r["hi"] for r in rows) or 1.0
    xs = alt.Scale(domain=[0, top * 1.35])
    chart = alt.layer(
        base.mark_bar(height=16).encode(
            x=alt.X("mean:Q", title=title, scale=xs),
            color=alt.Color("allocator:N", scale=colour_scale(order, palette), legend=None),
        ),
        base.mark_rule(stroke=INK, strokeWidth=1.5).encode(x=alt.X("lo:Q", scale=xs), x2="hi:Q"),
        base.mark_text(fill=INK, align="left", dx=6, fontSize=12).encode(
            x=alt.X("hi:Q", scale=xs), text="label:N"
        ),
    ).properties(width=WIDTH - 120, height=max(60, 32 * len(order)))

    def cpu(n: str) -> str:
        c = res.control[n].allocs_per_cpu_s
        return fmt_mops_cpu(c.center) if c else "not recorded"

    def wall(n: str) -> str:
        w = res.control[n].allocs_per_s
        return fmt_mops(w.center) if w else "not recorded"

    table = html_table(
        [
            Column("allocator"),
            Column("per second, mean", True),
            Column("per CPU-second, mean", True, "allocations per CPU-second of the churn"),
            Column("lowest repeat", True),
            Column("highest repeat", True),
            Column("repeats", True),
        ],
        [
            [n, wall(n), cpu(n), fmt(s.low), fmt(s.high), str(s.n)]
            for n in order
            for s in [speed[n]]
        ],
    )
    label = (
        f"Bar chart of C++ control {title}, fastest first, with a line for the spread "
        "of repeats: " + "; ".join(f"{r['allocator']} {r['label']}" for r in rows)
    )
    return finish(
        "throughput",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the throughput chart (mean and spread of repeats)",
    )
