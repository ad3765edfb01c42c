"""The article's charts as Vega-Lite specs (vega-altair), rendered to inline SVG at build time.

Five charts, each a function from the aggregated results to a finished <figure> block:
staircase (memory over time), peak beside settled, the dumbbell (control against service),
control throughput, and latency percentiles. Colours come from the Okabe-Ito palette, fixed
per allocator in spec order so an allocator keeps its colour across charts; everything that
is text or axis uses svg.INK and so follows the page's light or dark palette.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import altair as alt

from bench.report import series as ser
from bench.report.aggregate import Results
from bench.report.datatable import Column, html_table
from bench.report.run import Run
from bench.report.stats import classify_fingerprint, shed_fraction
from bench.report.svg import INK, figure_html, render_svg, theme_svg
from bench.report.units import MB, fmt_mb, fmt_mops, fmt_ms, fmt_pct, md_safe

__all__ = ["OKABE_ITO", "MAX_ROWS", "charts", "colours"]

#: Okabe & Ito's colour-blind-safe palette, without black (it vanishes in dark mode).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")

#: Altair's own row limit; the staircase is thinned to stay under it.
MAX_ROWS = 5000
WIDTH = 600


def colours(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per allocator, by its position in the spec."""
    return {n: OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(names)}


def _configure(chart: Any) -> dict:
    spec = (
        chart.configure(background="transparent", font="sans-serif", aria=False)
        .configure_axis(
            labelColor=INK,
            titleColor=INK,
            domainColor=INK,
            tickColor=INK,
            gridColor=INK,
            gridOpacity=0.15,
            labelFontSize=12,
            titleFontSize=12,
            titleFontWeight="normal",
        )
        .configure_legend(
            labelColor=INK,
            titleColor=INK,
            labelFontSize=12,
            titleFontSize=12,
            titleFontWeight="normal",
            symbolStrokeColor=INK,
        )
        .configure_title(
            color=INK, subtitleColor=INK, anchor="start", fontSize=13, fontWeight="normal"
        )
        .configure_view(stroke=None)
        .to_dict()
    )
    return spec


def _scale(order: Sequence[str], palette: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(order), range=[palette[n] for n in order])


def _finish(name: str, chart: Any, *, label: str, caption: str, table: str, summary: str) -> str:
    svg = theme_svg(render_svg(_configure(chart)), label=label, prefix=f"as-{name}")
    return figure_html(name=name, svg=svg, caption=caption, data_table=table, data_summary=summary)


def _empty(name: str, why: str) -> str:
    return f'<p class="as-nochart" id="chart-{name}">No chart: {md_safe(why)}</p>'


def staircase(run: Run, res: Results, palette: dict[str, str], caption: str) -> str:
    names = [n for n in res.names if n in res.service]
    lines = ser.first_repeat_series(run.memory, "service", names)
    if not lines:
        return _empty("staircase", "the run recorded no service memory samples.")
    order = sorted(lines, key=lambda n: (res.service[n].settled.center, n))
    budget = max(50, min(600, (MAX_ROWS - 100) // len(lines)))
    tmax = max(p[-1][0] for p in lines.values())
    minutes = tmax > 300
    k = 60.0 if minutes else 1.0
    rows = [
        {"allocator": n, "t": round(t / k, 4), "mb": round(v / MB, 2)}
        for n in order
        for t, v in ser.thin(lines[n], budget)
    ]
    spans = [s for s in ser.phase_spans(run.memory, "service") if s.phase in ("load", "idle")]
    shade = [
        {
            "phase": s.phase,
            "start": s.start_s / k,
            "end": s.end_s / k,
            "mid": (s.start_s + s.end_s) / 2 / k,
            "opacity": 0.07 if s.phase == "load" else 0.16,
        }
        for s in spans
    ]
    unit = "min" if minutes else "s"
    x = alt.X(
        "t:Q", title=f"time since the allocator's run began ({unit})", scale=alt.Scale(nice=False)
    )
    layers = []
    if shade:
        sd = alt.Data(values=shade)
        layers.append(
            alt.Chart(sd)
            .mark_rect(fill=INK)
            .encode(
                x="start:Q", x2="end:Q", opacity=alt.Opacity("opacity:Q", legend=None, scale=None)
            )
        )
        layers.append(
            alt.Chart(sd)
            .mark_text(fill=INK, baseline="top", dy=4, fontSize=12)
            .encode(x="mid:Q", y=alt.value(0), text="phase:N")
        )
    layers.append(
        alt.Chart(alt.Data(values=rows))
        .mark_line(strokeWidth=1.6)
        .encode(
            x=x,
            y=alt.Y("mb:Q", title="anonymous memory (MB)"),
            color=alt.Color(
                "allocator:N",
                scale=_scale(order, palette),
                legend=alt.Legend(title="leanest settled first", orient="right"),
            ),
        )
    )
    chart = alt.layer(*layers).properties(width=WIDTH - 140, height=280)
    load = next((s for s in spans if s.phase == "load"), None)
    label = (
        f"Line chart: anonymous memory in MB over time for {len(order)} allocators"
        + (
            f"; load phase shaded from {load.start_s / k:.1f} to {load.end_s / k:.1f} {unit}"
            if load
            else ""
        )
        + "; idle phase shaded after it."
    )
    table = html_table(
        [
            Column("allocator"),
            Column("start of load", True),
            Column("end of load", True),
            Column("peak", True),
            Column("settled", True),
            Column("samples", True),
        ],
        [
            [
                n,
                fmt_mb(ser.value_at(lines[n], load.start_s, load.start_s + 5)) if load else "",
                fmt_mb(ser.value_at(lines[n], load.end_s - 5, load.end_s)) if load else "",
                fmt_mb(res.service[n].peak.center),
                fmt_mb(res.service[n].settled.center),
                str(len(lines[n])),
            ]
            for n in order
        ],
    )
    return _finish(
        "staircase",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the staircase (first repeat of each allocator)",
    )


def peak_settled(res: Results, palette: dict[str, str], caption: str) -> str:
    if not res.service:
        return _empty("peak-settled", "the run recorded no service memory.")
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
        color=alt.Color("allocator:N", scale=_scale(order, palette), legend=None),
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
        [
            Column("allocator"),
            Column("peak", True),
            Column("settled", True),
            Column("given back", True),
            Column("fingerprint"),
        ],
        [
            [
                n,
                fmt_mb(r.peak.center),
                fmt_mb(r.settled.center),
                fmt_pct(shed_fraction(r.peak.center, r.settled.center)),
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
    return _finish(
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
        return _empty("dumbbell", "the run recorded no service memory.")
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
    color = alt.Color("allocator:N", scale=_scale(order, palette), legend=None)
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
    return _finish(
        "dumbbell",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the dumbbell (median of repeats)",
    )


def throughput(res: Results, palette: dict[str, str], caption: str) -> str:
    speed = {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}
    if not speed:
        return _empty("throughput", "the C++ control was not run or recorded no throughput.")
    order = sorted(speed, key=lambda n: (-speed[n].center, n))
    rows = [
        {
            "allocator": n,
            "mean": s.center / 1e6,
            "lo": s.low / 1e6,
            "hi": s.high / 1e6,
            "label": fmt_mops(s.center),
        }
        for n in order
        for s in [speed[n]]
    ]
    base = alt.Chart(alt.Data(values=rows)).encode(y=alt.Y("allocator:N", sort=order, title=None))
    top = max(r["hi"] for r in rows) or 1.0
    xs = alt.Scale(domain=[0, top * 1.35])
    chart = alt.layer(
        base.mark_bar(height=16).encode(
            x=alt.X("mean:Q", title="allocations per second (millions)", scale=xs),
            color=alt.Color("allocator:N", scale=_scale(order, palette), legend=None),
        ),
        base.mark_rule(stroke=INK, strokeWidth=1.5).encode(x=alt.X("lo:Q", scale=xs), x2="hi:Q"),
        base.mark_text(fill=INK, align="left", dx=6, fontSize=12).encode(
            x=alt.X("hi:Q", scale=xs), text="label:N"
        ),
    ).properties(width=WIDTH - 120, height=max(60, 32 * len(order)))
    table = html_table(
        [
            Column("allocator"),
            Column("mean", True),
            Column("lowest repeat", True),
            Column("highest repeat", True),
            Column("repeats", True),
        ],
        [
            [n, fmt_mops(s.center), fmt_mops(s.low), fmt_mops(s.high), str(s.n)]
            for n in order
            for s in [speed[n]]
        ],
    )
    label = (
        "Bar chart of C++ control throughput, fastest first, with a line for the spread "
        "of repeats: " + "; ".join(f"{r['allocator']} {r['label']}" for r in rows)
    )
    return _finish(
        "throughput",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the throughput chart (mean and spread of repeats)",
    )


def latency(res: Results, palette: dict[str, str], caption: str) -> str:
    items = {n: r for n, r in res.service.items() if r.p50 and r.p95 and r.p99}
    if not items:
        return _empty("latency", "the run recorded no latency percentiles.")
    order = sorted(items, key=lambda n: (items[n].p99.center, n))  # type: ignore[union-attr]
    points = [
        {"allocator": n, "pct": p, "ms": getattr(items[n], p).center}
        for n in order
        for p in ("p50", "p95", "p99")
    ]
    spans = [{"allocator": n, "lo": items[n].p50.center, "hi": items[n].p99.center} for n in order]
    y = alt.Y("allocator:N", sort=order, title=None)
    color = alt.Color("allocator:N", scale=_scale(order, palette), legend=None)
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
    return _finish(
        "latency",
        chart,
        label=label,
        caption=caption,
        table=table,
        summary="Data behind the latency chart (median of repeats)",
    )


def _captions(res: Results) -> dict[str, str]:
    """What each chart encodes, in words (the takeaways are in the article's sentences)."""
    n_svc = max((r.settled.n for r in res.service.values()), default=0)
    n_ctl = max((c.allocs_per_s.n for c in res.control.values() if c.allocs_per_s), default=0)
    reps = f"median of {n_svc} repeats" if n_svc > 1 else "a single repeat"
    return {
        "staircase": "Anonymous memory of the service's processes over time, first repeat of "
        "each allocator. The load phase is shaded lightly, the idle phase darker; the legend "
        "lists the leanest settled allocator first.",
        "peak_settled": f"Peak (faint bar) and settled (solid bar) anonymous memory of the "
        f"service per allocator ({reps}), leanest settled first.",
        "dumbbell": "Settled anonymous memory per allocator: the C++ control as a hollow dot, "
        "the Python service as a filled dot; the label is the service minus the control.",
        "throughput": f"C++ control allocations per second, mean of {n_ctl} repeat"
        f"{'s' if n_ctl != 1 else ''}; the dark line spans the slowest to the fastest repeat.",
        "latency": f"Request latency per allocator ({reps}), counted from each request's "
        "scheduled send time: circle p50, square p95, triangle p99.",
    }


def charts(run: Run, res: Results) -> dict[str, Callable[[], str]]:
    """Every chart a page can place as {{ chart.<name> }}, rendered when first used."""
    palette = colours(res.names)
    cap = _captions(res)
    return {
        "staircase": lambda: staircase(run, res, palette, cap["staircase"]),
        "peak_settled": lambda: peak_settled(res, palette, cap["peak_settled"]),
        "dumbbell": lambda: dumbbell(res, palette, cap["dumbbell"]),
        "throughput": lambda: throughput(res, palette, cap["throughput"]),
        "latency": lambda: latency(res, palette, cap["latency"]),
    }
