"""The article's charts as Vega-Lite specs (vega-altair), rendered to inline SVG at build time.

Five charts, each a function from the aggregated results to a finished <figure> block:
staircase (memory over time), peak beside settled, the dumbbell (control against service),
control throughput, and latency percentiles. Colours come from the Okabe-Ito palette, fixed
per allocator in spec order so an allocator keeps its colour across charts; everything that
is text or axis uses svg.INK and so follows the page's light or dark palette.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import altair as alt

from bench.report import series as ser
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.compare import Sample, classify_fingerprint
from bench.report.datatable import Column, html_table
from bench.report.experiment import OVERHEAD_HELP, ratio_text
from bench.report.live import LivePayload, live_payload
from bench.report.method import method_of
from bench.report.prose import control_measure
from bench.report.run import Run
from bench.report.svg import INK, figure_html, render_svg, theme_svg
from bench.report.units import (
    MB,
    fmt_given_back,
    fmt_mb,
    fmt_mops,
    fmt_mops_cpu,
    fmt_ms,
    fmt_seconds,
    join_names,
    md_safe,
)

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


def _median(samples: Sequence[Sample | None]) -> float | None:
    """The median across allocators of their centres (the run's one live payload)."""
    centers = [x.center for x in samples if x is not None]
    return statistics.median(centers) if centers else None


def _empty(name: str, why: str) -> str:
    return f'<p class="as-nochart" id="chart-{name}">No chart: {md_safe(why)}</p>'


#: How each service phase is named on the chart, and how dark it is shaded.
PHASE_LABEL = {
    "start": "start-up",
    "warmup": "warm-up",
    "load": "load",
    "idle": "idle",
    "reclaim": "reclaim",
}
PHASE_SHADE = {"start": 0.13, "warmup": 0.035, "load": 0.07, "idle": 0.16, "reclaim": 0.26}


#: Width of the staircase's plot area in pixels, and of one label character, roughly.
PLOT_WIDTH = WIDTH - 140
CHAR_PX = 6.5


def phase_labels(spans: Sequence[ser.PhaseSpan], tmax: float, k: float) -> list[dict[str, Any]]:
    """Where each phase's label goes: centred on its span, unless that would push it past an
    edge of the plot (then left-aligned at the span's start, or right-aligned at its end),
    alternating between two rows so that short neighbouring phases do not collide."""
    out = []
    for i, s in enumerate(spans):
        mid = (s.start_s + s.end_s) / 2
        half = len(PHASE_LABEL[s.phase]) * CHAR_PX / 2 / PLOT_WIDTH * tmax
        if mid - half < 0:
            align, x = "left", s.start_s
        elif mid + half > tmax:
            align, x = "right", max(s.end_s, s.start_s)
        else:
            align, x = "center", mid
        out.append({"label": PHASE_LABEL[s.phase], "x": x / k, "align": align, "row": i % 2})
    return out


def _phase_layers(spans: Sequence[ser.PhaseSpan], tmax: float, k: float) -> list[Any]:
    """The shaded phases behind the staircase, and their labels along its top."""
    if not spans:
        return []
    shade = [
        {"start": s.start_s / k, "end": s.end_s / k, "opacity": PHASE_SHADE[s.phase]} for s in spans
    ]
    layers = [
        alt.Chart(alt.Data(values=shade))
        .mark_rect(fill=INK)
        .encode(x="start:Q", x2="end:Q", opacity=alt.Opacity("opacity:Q", legend=None, scale=None))
    ]
    labels = phase_labels(spans, tmax, k)
    for align in ("left", "center", "right"):
        for row in (0, 1):
            mine = [lb for lb in labels if lb["align"] == align and lb["row"] == row]
            if mine:
                layers.append(
                    alt.Chart(alt.Data(values=mine))
                    .mark_text(
                        fill=INK,
                        baseline="top",
                        align=align,
                        dx={"left": 3, "right": -3}.get(align, 0),
                        fontSize=11,
                    )
                    .encode(x="x:Q", y=alt.value(3 + 14 * row), text="label:N")
                )
    return layers


def _staircase_table(
    run: Run,
    res: Results,
    lines: dict[str, list[tuple[float, float]]],
    order: Sequence[str],
    live: LivePayload,
) -> str:
    """The numbers behind the staircase: per series, ready, the ends of load, peak, settled.

    The load phase is measured from its own samples (not the shading, which runs on to the
    next phase), so "end of load" never takes in an idle sample.
    """
    load = next((s for s in ser.phase_spans(run.memory, "service") if s.phase == "load"), None)
    window = max(float(specview.get(run.spec, "service.sample_interval_s")) * 5, 1.0)

    def at(pts: Sequence[tuple[float, float]], lo: float, hi: float) -> str:
        return fmt_mb(ser.value_at(pts, lo, hi))

    rows: list[list[str]] = []
    if live.line:
        rows.append(
            [
                "live payload (median across allocators)",
                fmt_mb(_median([r.live_ready for r in res.service.values()])),
                fmt_mb(ser.latest_at(live.line, load.start_s)) if load else "",
                fmt_mb(_median([r.live_load_end for r in res.service.values()])),
                "",
                "",
                str(live.points),
            ]
        )
    for n in order:
        r = res.service[n]
        rows.append(
            [
                n,
                fmt_mb(r.ready.center) if r.ready else "not recorded",
                at(lines[n], load.start_s, load.start_s + window) if load else "",
                at(lines[n], load.end_s - window, load.end_s) if load else "",
                fmt_mb(r.peak.center),
                fmt_mb(r.settled.center),
                str(len(lines[n])),
            ]
        )
    return html_table(
        [
            Column("series"),
            Column("ready", True, "when every worker was ready (memory: median of repeats)"),
            Column("start of load", True),
            Column("end of load", True),
            Column("peak", True),
            Column("settled", True),
            Column("points", True, "memory samples, or /churn answers for the live payload"),
        ],
        rows,
    )


def staircase_caption(spans: Sequence[ser.PhaseSpan], live_lines: int) -> str:
    """What the staircase encodes, from the phases the run recorded."""
    shaded = join_names([PHASE_LABEL[s.phase] for s in spans])
    text = (
        "Anonymous memory of the service's processes from the moment it was launched, first "
        "repeat of each allocator; the legend lists the leanest settled allocator first."
    )
    if shaded:
        text += f" Shaded, left to right: {shaded}."
    if live_lines:
        text += (
            " The dashed line is the live payload, the bytes the program itself held: at each "
            "/churn answer, the sum over workers of each worker's latest live bytes, starting "
            "from what each worker held when the service was ready."
        )
        if live_lines > 1:
            text += (
                f" It is the median across the {live_lines} allocators, which all ran the same "
                "seeded workload."
            )
    return text


def staircase(
    run: Run, res: Results, palette: dict[str, str], live: LivePayload | None = None
) -> str:
    """Memory over time from the service's launch, one line per allocator, on the phases the
    run recorded, with the live payload dashed beneath: the gap is what the allocator adds."""
    names = [n for n in res.names if n in res.service]
    lines = ser.first_repeat_series(run.memory, "service", names)
    if not lines:
        return _empty("staircase", "the run recorded no service memory samples.")
    live = live if live is not None else live_payload(run, names)
    order = sorted(lines, key=lambda n: (res.service[n].settled.center, n))
    budget = max(50, min(600, (MAX_ROWS - 400) // len(lines)))
    tmax = max(p[-1][0] for p in lines.values())
    minutes = tmax > 300
    k = 60.0 if minutes else 1.0
    rows = [
        {"allocator": n, "t": round(t / k, 4), "mb": round(v / MB, 2)}
        for n in order
        for t, v in ser.thin(lines[n], budget)
    ]
    payload = [{"t": round(t / k, 4), "mb": round(v / MB, 2)} for t, v in ser.thin(live.line, 300)]
    spans = ser.close_gaps(
        [s for s in ser.phase_spans(run.memory, "service") if s.phase in PHASE_LABEL]
    )
    unit = "min" if minutes else "s"
    x = alt.X(
        "t:Q", title=f"time since the service was launched ({unit})", scale=alt.Scale(nice=False)
    )
    # headroom above the highest line for the phase labels, which sit in the top rows
    top = max([v for p in lines.values() for _, v in p] + [v for _, v in live.line]) / MB
    y = alt.Y(
        "mb:Q",
        title="anonymous memory and live payload (MB)" if payload else "anonymous memory (MB)",
        scale=alt.Scale(domainMax=top * 1.15 if top > 0 else None),
    )
    layers = _phase_layers(spans, tmax, k)
    layers.append(
        alt.Chart(alt.Data(values=rows))
        .mark_line(strokeWidth=1.6)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "allocator:N",
                scale=_scale(order, palette),
                legend=alt.Legend(title="leanest settled first", orient="right"),
            ),
        )
    )
    if payload:
        layers.append(
            alt.Chart(alt.Data(values=payload))
            .mark_line(stroke=INK, strokeWidth=1.8, strokeDash=[6, 4], opacity=0.85)
            .encode(x=x, y=y)
        )
        layers.append(
            alt.Chart(alt.Data(values=[payload[-1]]))
            .mark_text(fill=INK, align="right", baseline="bottom", dx=-2, dy=-4, fontSize=11)
            .encode(x="t:Q", y="mb:Q", text=alt.value("live payload"))
        )
    chart = alt.layer(*layers).properties(width=PLOT_WIDTH, height=280)
    phases = "; ".join(
        f"{PHASE_LABEL[s.phase]} from {s.start_s / k:.1f} to {s.end_s / k:.1f} {unit}"
        for s in spans
    )
    label = (
        f"Line chart: anonymous memory in MB over time since launch for {len(order)} allocators"
        + ("; a dashed line shows the live payload the program held" if payload else "")
        + (f"; phases shaded: {phases}" if phases else "")
        + "."
    )
    table = _staircase_table(run, res, lines, order, live)
    return _finish(
        "staircase",
        chart,
        label=label,
        caption=staircase_caption(spans, len(live.lines) if payload else 0),
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
            Column("overhead at peak", True, OVERHEAD_HELP),
            Column("overhead settled", True, OVERHEAD_HELP),
            Column("given back", True, "share of the peak given back by the end of idle"),
            Column("fingerprint"),
        ],
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
    """Control throughput on the measure that ranks it (prose.control_measure), both in the
    table: per wall-clock second, and per CPU-second of the churn."""
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    speed = {n: getattr(c, key) for n, c in res.control.items() if getattr(c, key)}
    fmt = fmt_mops_cpu if measure == "cpu" else fmt_mops
    if not speed:
        return _empty("throughput", "the C++ control was not run or recorded no throughput.")
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
            color=alt.Color("allocator:N", scale=_scale(order, palette), legend=None),
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


def _captions(run: Run, res: Results) -> dict[str, str]:
    """What each chart encodes, in words (the takeaways are in the article's sentences)."""
    n_svc = max((r.settled.n for r in res.service.values()), default=0)
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    n_ctl = max((getattr(c, key).n for c in res.control.values() if getattr(c, key)), default=0)
    reps = f"median of {n_svc} repeats" if n_svc > 1 else "a single repeat"
    recorded = method_of(run.manifest).latency_failures
    failures = f" ({md_safe(recorded)})" if recorded else ""
    what = (
        "allocations per CPU-second of churn (the control had more threads than CPUs, so "
        "this leaves out the turns its threads waited)"
        if measure == "cpu"
        else "allocations per second"
    )
    return {
        "peak_settled": f"Peak (faint bar) and settled (solid bar) anonymous memory of the "
        f"service per allocator ({reps}), leanest settled first.",
        "dumbbell": "Settled anonymous memory per allocator: the C++ control as a hollow dot, "
        "the Python service as a filled dot; the label is the service minus the control."
        + rest_caveat(run, res),
        "throughput": f"C++ control {what}, mean of {n_ctl} repeat"
        f"{'s' if n_ctl != 1 else ''}; the dark line spans the slowest to the fastest repeat.",
        "latency": f"Request latency per allocator ({reps}), counted from each request's "
        f"scheduled send time{failures}: circle p50, square p95, triangle p99.",
    }


def charts(run: Run, res: Results, live: LivePayload | None = None) -> dict[str, Callable[[], str]]:
    """Every chart a page can place as {{ chart.<name> }}, rendered when first used."""
    palette = colours(res.names)
    cap = _captions(run, res)
    return {
        "staircase": lambda: staircase(run, res, palette, live),
        "peak_settled": lambda: peak_settled(res, palette, cap["peak_settled"]),
        "dumbbell": lambda: dumbbell(res, palette, cap["dumbbell"]),
        "throughput": lambda: throughput(res, palette, cap["throughput"]),
        "latency": lambda: latency(res, palette, cap["latency"]),
    }
