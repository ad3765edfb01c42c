"""The memory comparisons: peak beside settled per allocator, and the dumbbell of the C++
control's settled memory against the service's (with the caveat when the control rested less).
"""

from __future__ import annotations

import statistics

import altair as alt

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.charts.figure import WIDTH, colour_scale, finish, no_chart
from bench.report.compare import classify_fingerprint
from bench.report.datatable import Column, html_table
from bench.report.experiment import MEMORY_COLUMNS, ratio_text
from bench.report.run import Run
from bench.report.svg import INK
from bench.report.units import MB, fmt_given_back, fmt_mb, fmt_seconds

__all__ = ["dumbbell", "peak_settled", "rest_caveat"]


def peak_settled(res: Results, palette: dict[str, str], caption: str) -> str:
    if not res.service:
        return no_chart("peak-settled", "the run recorded no service memory.")
    order = sorted(res.service, key=lambda n: (res.service[n].settled.center, n))
    rows = [
        {
            "allocator": n,
            "peak": r.peak.center / MB,
            "settled": r.settled.center / MB,
            "label": f"settled {fmt_mb(r.settled.center)} · peak {fmt_mb(r.peak.center)}",
        }
        for n in order
        for r in [res.service[n]]
    ]
    top = max(r["peak"] for r in rows) or 1.0
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("allocator:N", sort=order, title=None),
        color=alt.Color("allocator:N", scale=colour_scale(order, palette), legend=None),
    )
    xs = alt.Scale(domain=[0, top * 1.55])
    chart = alt.layer(
        base.mark_bar(opacity=0.3, height=18).encode(
            x=alt.X("peak:Q", title="anonymous memory (MB)", scale=xs)
        ),
        base.mark_bar(opacity=1.0, height=10).encode(x=alt.X("settled:Q", scale=xs)),
        base.mark_text(fill=INK, align="left", dx=5, fontSize=12).encode(
            x=alt.X("peak:Q", scale=xs), text="label:N"
        ),
    ).properties(width=WIDTH - 120, height=max(60, 34 * len(order)))
    table = html_table(
        [*MEMORY_COLUMNS, Column("fingerprint")],
        [
            [
                n,
                fmt_mb(r.peak.center),
                fmt_mb(r.settled.center),
                ratio_text(r.overhead_peak),
                ratio_text(r.overhead_settled),
                fmt_given_back(r.given_back.center if r.given_back else None),
                classify_fingerprint(r.peak.center, r.settled.center),
            ]
            for n in order
            for r in [res.service[n]]
        ],
    )
    label = (
        "Bar chart: for each allocator a faint bar for peak and a solid bar for settled "
        "anonymous memory in MB, leanest settled first. "
        + "; ".join(f"{r['allocator']}: {r['label']}" for r in rows)
    )
    return finish(
        "peak-settled",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind peak and settled memory (median of repeats)",
    )


def dumbbell(res: Results, palette: dict[str, str], caption: str) -> str:
    names = [n for n in res.names if n in res.service]
    if not names:
        return no_chart("dumbbell", "the run recorded no service memory.")
    order = sorted(names, key=lambda n: (res.service[n].settled.center, n))
    rows = []
    for n in order:
        svc = res.service[n].settled.center / MB
        ctl_s = res.control.get(n).settled if res.control.get(n) else None
        ctl = ctl_s.center / MB if ctl_s else None
        gap = f"{svc - ctl:+,.0f} MB".replace("-", "\u2212") if ctl is not None else "no control"
        rows.append(
            {
                "allocator": n,
                "service": svc,
                "control": ctl,
                "gap": gap,
                "mid": (svc + ctl) / 2 if ctl is not None else svc,
            }
        )
    with_ctl = [r for r in rows if r["control"] is not None]
    y = alt.Y("allocator:N", sort=order, title=None)
    color = alt.Color("allocator:N", scale=colour_scale(order, palette), legend=None)
    layers = []
    if with_ctl:
        cd = alt.Data(values=with_ctl)
        layers += [
            alt.Chart(cd)
            .mark_rule(stroke=INK, strokeOpacity=0.45, strokeWidth=2)
            .encode(y=y, x="control:Q", x2="service:Q"),
            alt.Chart(cd)
            .mark_point(filled=False, size=110, strokeWidth=2.2)
            .encode(y=y, x="control:Q", color=color),
        ]
    sd = alt.Data(values=rows)
    layers += [
        alt.Chart(sd)
        .mark_point(filled=True, size=110, opacity=1)
        .encode(
            y=y,
            x=alt.X("service:Q", title="settled anonymous memory (MB)", scale=alt.Scale(zero=True)),
            color=color,
        ),
        alt.Chart(sd).mark_text(fill=INK, dy=-13, fontSize=11).encode(y=y, x="mid:Q", text="gap:N"),
    ]
    chart = alt.layer(*layers).properties(
        width=WIDTH - 120,
        height=max(60, 40 * len(order)),
        title=alt.Title("", subtitle="hollow dot: C++ control · filled dot: Python service"),
    )
    table = html_table(
        [
            Column("allocator"),
            Column("C++ control settled", True),
            Column("service settled", True),
            Column("gap", True),
        ],
        [
            [
                r["allocator"],
                fmt_mb(r["control"] * MB) if r["control"] is not None else "not measured",
                fmt_mb(r["service"] * MB),
                r["gap"],
            ]
            for r in rows
        ],
    )
    label = (
        "Dumbbell chart of settled memory per allocator, C++ control as a hollow dot and "
        "Python service as a filled dot: " + "; ".join(f"{r['allocator']} {r['gap']}" for r in rows)
    )
    return finish(
        "dumbbell",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the dumbbell (median of repeats)",
    )


def rest_caveat(run: Run, res: Results) -> str:
    """Said under the dumbbell when the control rested less than the service ('' otherwise):
    its allocators then had less time to return memory, so its settled value sits higher."""
    rests = [c.idle_s.center for c in res.control.values() if c.idle_s is not None]
    service_idle = float(specview.get(run.spec, "service.idle_s"))
    rest = statistics.median(rests) if rests else None
    if rest is None and res.control:
        rest = specview.control_idle_s(run.spec)
    if rest is None or rest >= service_idle:
        return ""
    return (
        f" The control rested {fmt_seconds(rest)} after its churn, less than the service's "
        f"{fmt_seconds(service_idle)} of idle, so its allocators had less time to return "
        "memory before its settled value was taken."
    )
