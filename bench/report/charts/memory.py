"""The memory comparisons: peak beside settled per allocator, and the dumbbell of the C++
control's settled memory against the service's (with the caveat when the control rested less).

Both show each value's 95% interval as a whisker when the run has repeats, and draw the A/A
duplicate apart (hollow, dashed), so a reader sees how far two identical runs land, and a
variant lighter (or its gap dotted) beside its base.
"""

from __future__ import annotations

import statistics
from typing import Any

import altair as alt

from bench.report import specview
from bench.report.aggregate import Results
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
from bench.report.experiment import MEMORY_COLUMNS, ratio_text
from bench.report.runfolders import Run
from bench.report.stats import classify_fingerprint
from bench.report.svg import INK
from bench.report.units import MB, fmt_given_back, fmt_mb, fmt_seconds

__all__ = ["dumbbell", "peak_settled", "rest_caveat"]


def _dashed_if_again() -> dict[str, Any]:
    """The A/A duplicate's bars: hollow with a dashed outline, beside its pair's solid ones;
    a variant's: a lighter fill in its base's colour, the outline solid."""
    return {
        "strokeDash": by_kind([1, 0], again=[4, 2], variant=[1, 0]),
        "fillOpacity": by_kind(1.0, again=0.15, variant=0.45),
    }


def peak_settled(res: Results, names: Names, caption: str) -> str:
    """Peak (faint) and settled (solid) bars per allocator, each with its 95% whisker."""
    if not res.service:
        return no_chart("peak-settled", "the run recorded no service memory.")
    order = res.grouped(sorted(res.service, key=lambda n: (res.service[n].settled.center, n)))
    rows, whisk = [], []
    for n in order:
        r = res.service[n]
        row = {
            "allocator": names.label(n),
            "again": names.is_again(n),
            "variant": names.is_variant(n),
            "peak": r.peak.center / MB,
            "settled": r.settled.center / MB,
            "label": f"settled {fmt_mb(r.settled.center)} · peak {fmt_mb(r.peak.center)}",
        }
        row["text_x"] = row["peak"]
        for what, s in (("peak", r.peak), ("settled", r.settled)):
            iv = bounds(s, MB)
            if iv is not None:
                whisk.append(
                    {"allocator": row["allocator"], "what": what, "lo": iv[0], "hi": iv[1]}
                )
                row["text_x"] = max(row["text_x"], iv[1])
        rows.append(row)
    labels = [names.label(n) for n in order]
    top = max(r["text_x"] for r in rows) or 1.0
    xs = alt.Scale(domain=[0, top * 1.55], nice=False)
    plot_width = WIDTH - 120
    title = "anonymous memory (MB)"
    y = alt.Y("allocator:N", sort=labels, title=None)
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=y, color=alt.Color("allocator:N", scale=names.scale(order), legend=None)
    )
    outline = {"stroke": alt.Color("allocator:N", scale=names.scale(order), legend=None)}
    chart = alt.layer(
        base.mark_bar(opacity=0.3, height=18, strokeWidth=1.2).encode(
            x=alt.X("peak:Q", scale=xs, axis=value_axis(title, plot_width)),
            **_dashed_if_again(),
            **outline,
        ),
        base.mark_bar(height=10, strokeWidth=1.5).encode(
            x=alt.X("settled:Q", scale=xs), **_dashed_if_again(), **outline
        ),
        *whiskers(whisk, y, title, xs),
        base.mark_text(fill=INK, align="left", dx=7, fontSize=12).encode(
            x=alt.X("text_x:Q", scale=xs), text="label:N"
        ),
    ).properties(width=plot_width, height=max(60, 34 * len(order)))
    served = [res.service[n] for n in order]
    table = data_table(
        [*MEMORY_COLUMNS, Column("fingerprint")],
        [
            [
                names.row(n),
                fmt_mb(r.peak.center),
                fmt_mb(r.settled.center),
                ratio_text(r.overhead_peak),
                ratio_text(r.overhead_settled),
                fmt_given_back(r.given_back.center if r.given_back else None),
                classify_fingerprint(r.peak.center, r.settled.center),
            ]
            for n, r in zip(order, served, strict=True)
        ],
        [
            Column("peak, 95% interval", True, INTERVAL_HELP),
            Column("settled, 95% interval", True, INTERVAL_HELP),
            Column("repeats", True, "clean repeats the mean is built from"),
        ],
        [
            [
                interval_text(r.peak, fmt_mb),
                interval_text(r.settled, fmt_mb),
                repeats_text(r.settled.n, r.excluded),
            ]
            for r in served
        ],
        drawn=bool(whisk),
    )
    label = (
        "Bar chart: for each allocator a faint bar for peak and a solid bar for settled "
        "anonymous memory in MB, leanest settled first"
        + (", each with a whisker for its 95% interval" if whisk else "")
        + ". "
        + "; ".join(f"{r['allocator']}: {r['label']}" for r in rows)
    )
    return finish(
        "peak-settled",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary=data_summary("peak and settled memory", bool(whisk)),
    )


def dumbbell(res: Results, names: Names, caption: str) -> str:
    """Per allocator the control's settled memory (hollow) against the service's (filled),
    the gap drawn and labelled, each dot with its 95% whisker when the run has repeats."""
    shown = [n for n in res.names if n in res.service]
    if not shown:
        return no_chart("dumbbell", "the run recorded no service memory.")
    order = res.grouped(sorted(shown, key=lambda n: (res.service[n].settled.center, n)))
    rows, whisk = [], []
    for n in order:
        svc_s = res.service[n].settled
        ctl_s = res.control[n].settled if n in res.control else None
        svc = svc_s.center / MB
        ctl = ctl_s.center / MB if ctl_s else None
        gap = f"{svc - ctl:+,.0f} MB".replace("-", "\u2212") if ctl is not None else "no control"
        label = names.label(n)
        rows.append(
            {
                "allocator": label,
                "name": n,
                "again": names.is_again(n),
                "variant": names.is_variant(n),
                "service": svc,
                "control": ctl,
                "gap": gap,
                "mid": (svc + ctl) / 2 if ctl is not None else svc,
            }
        )
        for s in (svc_s, ctl_s):
            if (iv := bounds(s, MB)) is not None:
                whisk.append({"allocator": label, "lo": iv[0], "hi": iv[1]})
    with_ctl = [r for r in rows if r["control"] is not None]
    y = alt.Y("allocator:N", sort=[names.label(n) for n in order], title=None)
    color = alt.Color("allocator:N", scale=names.scale(order), legend=None)
    plot_width = WIDTH - 120
    title = "settled anonymous memory (MB)"
    xs = alt.Scale(zero=True, domainMin=0)
    layers = []
    if with_ctl:
        cd = alt.Data(values=with_ctl)
        layers += [
            alt.Chart(cd)
            .mark_rule(stroke=INK, strokeOpacity=0.45, strokeWidth=2)
            .encode(
                y=y,
                x=alt.X("control:Q", scale=xs, title=title),
                x2="service:Q",
                strokeDash=by_kind([1, 0], again=[4, 3], variant=[1.5, 2.5]),
            ),
            alt.Chart(cd)
            .mark_point(filled=False, size=110, strokeWidth=2.2)
            .encode(y=y, x=alt.X("control:Q", scale=xs, title=title), color=color),
        ]
    layers += whiskers(whisk, y, title, xs, thickness=1.2, ticks={"size": 7})
    sd = alt.Data(values=rows)
    layers += [
        alt.Chart(sd)
        .mark_point(filled=True, size=110)
        .encode(
            opacity=by_kind(1.0, again=1.0, variant=0.5),
            y=y,
            x=alt.X(
                "service:Q",
                scale=xs,
                axis=value_axis(title, plot_width),
            ),
            color=color,
        ),
        alt.Chart(sd)
        .mark_text(fill=INK, dy=-13, fontSize=11)
        .encode(y=y, x=alt.X("mid:Q", title=title), text="gap:N"),
    ]
    chart = alt.layer(*layers).properties(
        width=plot_width,
        height=max(60, 40 * len(order)),
        title=alt.Title("", subtitle="hollow dot: C++ control · filled dot: Python service"),
    )
    table = data_table(
        [
            Column("allocator"),
            Column("C++ control settled", True),
            Column("service settled", True),
            Column("gap", True),
        ],
        [
            [
                names.row(r["name"]),
                fmt_mb(r["control"] * MB) if r["control"] is not None else "not measured",
                fmt_mb(r["service"] * MB),
                r["gap"],
            ]
            for r in rows
        ],
        [
            Column("control, 95% interval", True, INTERVAL_HELP),
            Column("service, 95% interval", True, INTERVAL_HELP),
        ],
        [
            [
                interval_text(
                    res.control[r["name"]].settled if r["name"] in res.control else None, fmt_mb
                ),
                interval_text(res.service[r["name"]].settled, fmt_mb),
            ]
            for r in rows
        ],
        drawn=bool(whisk),
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
        summary=data_summary("the dumbbell", bool(whisk)),
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
