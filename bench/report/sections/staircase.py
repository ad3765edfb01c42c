"""The staircase: memory over time per allocator, and the live payload the program held.

Chart {{ chart.staircase }}; sentences {{ say.staircase }}, {{ say.live_payload }}; values
`live.*` (the median across allocators of what the program held, and when it filled).

The chart draws the service's memory over time from its launch, one line per allocator, on
the phases the run recorded, with the live payload dashed beneath (the gap is what the
allocator adds), and the table of numbers behind it. Its sentences are the memory family's
(bench.report.prose.memory), which the headline shares.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt

from bench.report import series as ser
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.charts.figure import (
    MAX_ROWS,
    Names,
    finish,
    no_chart,
)
from bench.report.datatable import Column, html_table
from bench.report.live import FILL_SHARE, LivePayload, fill_text, live_payload
from bench.report.prose import memory
from bench.report.prose.rankings import median_center
from bench.report.recorded_method import Method
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.svg import INK
from bench.report.units import MB, fmt_duration, fmt_mb, fmt_pct, join_names

__all__ = [
    "CHAR_PX",
    "PHASE_LABEL",
    "PHASE_SHADE",
    "PLOT_HEIGHT",
    "PLOT_WIDTH",
    "ROW_PX",
    "StaircaseSection",
    "legend_columns",
    "phase_labels",
    "rate_band",
    "staircase_caption",
    "staircase_chart",
]


#: How each service phase is named on the chart, and how dark it is shaded.
PHASE_LABEL = {
    "start": "start-up",
    "warmup": "warm-up",
    "load": "load",
    "idle": "idle",
    "reclaim": "reclaim",
}

PHASE_SHADE = {"start": 0.13, "warmup": 0.035, "load": 0.07, "idle": 0.16, "reclaim": 0.26}

#: Width of the staircase's plot area in pixels: the whole content column less the y axis
#: (the legend sits above the plot, not beside it), and of one label character, roughly.
PLOT_WIDTH = 650
PLOT_HEIGHT = 300

CHAR_PX = 6.5

#: The band above the plot that holds the phase labels: one row's height, in pixels.
ROW_PX = 14

#: The A/A duplicate's line: dashed in its pair's colour (the live payload's dash is longer and
#: in the text colour), so it reads as the second run of its pair.
AGAIN_DASH = [4, 2]
#: A variant's line: dotted in its base's colour, so it reads as that allocator tuned.
VARIANT_DASH = [1.5, 2.5]


def legend_columns(labels: Sequence[str]) -> int:
    """Legend entries per row above the plot: all in one row when they fit its width, else
    as many as fit (Vega lays the rows out as a grid of equal columns)."""
    entry = [len(s) * CHAR_PX + 30 for s in labels]
    if sum(entry) <= PLOT_WIDTH:
        return len(labels)
    return max(1, int(PLOT_WIDTH // max(entry)))


def phase_labels(spans: Sequence[ser.PhaseSpan], tmax: float, k: float) -> list[dict[str, Any]]:
    """Where each phase's label goes: centred on its span, unless that would push it past an
    edge of the plot (then left-aligned at the span's start, or right-aligned at its end).

    Labels sit in a band above the plot, never over the lines: on the first row of the band
    when they clear the label before them there, else on the second (short neighbouring
    phases, such as start-up and warm-up, would otherwise collide).
    """
    out = []
    ends = [-math.inf, -math.inf]  # right edge, in pixels, of the last label on each row
    px = PLOT_WIDTH / tmax if tmax > 0 else 0.0
    for s in spans:
        text = PHASE_LABEL[s.phase]
        w = len(text) * CHAR_PX
        mid = (s.start_s + s.end_s) / 2
        half = w / 2 / PLOT_WIDTH * tmax
        if mid - half < 0:
            align, x = "left", s.start_s
            left = x * px + 3
        elif mid + half > tmax:
            align, x = "right", max(s.end_s, s.start_s)
            left = x * px - 3 - w
        else:
            align, x = "center", mid
            left = x * px - w / 2
        row = 0 if left > ends[0] + CHAR_PX else 1
        ends[row] = left + w
        out.append({"label": text, "x": x / k, "align": align, "row": row})
    return out


def _phase_layers(spans: Sequence[ser.PhaseSpan], tmax: float, k: float) -> list[Any]:
    """The shaded phases behind the staircase, reaching up into a band above the plot where
    their labels sit, so no label is drawn over the data."""
    if not spans:
        return []
    labels = phase_labels(spans, tmax, k)
    band = ROW_PX * (1 + max(lb["row"] for lb in labels)) + 6
    shade = [
        {"start": s.start_s / k, "end": s.end_s / k, "opacity": PHASE_SHADE[s.phase]} for s in spans
    ]
    layers = [
        alt.Chart(alt.Data(values=shade))
        .mark_rect(fill=INK, clip=False)
        .encode(
            x="start:Q",
            x2="end:Q",
            y=alt.value(-band),
            y2=alt.value(PLOT_HEIGHT),
            opacity=alt.Opacity("opacity:Q", legend=None, scale=None),
        )
    ]
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
                    .encode(x="x:Q", y=alt.value(3 - band + ROW_PX * row), text="label:N")
                )
    return layers


def _again_encoding(order: Sequence[str], names: Names, legend: alt.Legend) -> dict[str, Any]:
    """The A/A duplicate's line dashed and a variant's dotted, both a little heavier;
    nothing when the run has neither.

    On the same field as the colour, so Vega-Lite draws one legend showing all three."""
    if not any(names.is_again(n) or names.is_variant(n) for n in order):
        return {}
    labels = [names.label(n) for n in order]

    def scale(again: Any, variant: Any, other: Any) -> alt.Scale:
        def pick(n: str) -> Any:
            return again if names.is_again(n) else variant if names.is_variant(n) else other

        return alt.Scale(domain=labels, range=[pick(n) for n in order])

    return {
        "strokeDash": alt.StrokeDash(
            "allocator:N", scale=scale(AGAIN_DASH, VARIANT_DASH, [1, 0]), legend=legend
        ),
        "strokeWidth": alt.StrokeWidth("allocator:N", scale=scale(2.2, 2.0, 1.6), legend=legend),
    }


def _staircase_table(
    run: Run,
    res: Results,
    lines: dict[str, list[tuple[float, float]]],
    order: Sequence[str],
    live: LivePayload,
    names: Names,
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
                fmt_mb(median_center([r.live_ready for r in res.service.values()])),
                fmt_mb(ser.latest_at(live.line, load.start_s)) if load else "",
                fmt_mb(median_center([r.live_load_end for r in res.service.values()])),
                "",
                "",
                str(live.points),
            ]
        )
    for n in order:
        r = res.service[n]
        rows.append(
            [
                names.row(n),
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
            Column(
                "ready", True, "when every worker was ready (memory: mean of the clean repeats)"
            ),
            Column("start of load", True),
            Column("end of load", True),
            Column("peak", True, "mean of the clean repeats"),
            Column("settled", True, "mean of the clean repeats"),
            Column("points", True, "memory samples, or the service's answers for the live payload"),
        ],
        rows,
    )


#: Height of the band above the staircase that draws the load's offered rate, in pixels.
RATE_BAND_PX = 56


def rate_band(run: Run, allocator: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The offered rate over the load of `allocator`'s first repeat, (t_s, rate) points, and
    its stages' labels (name and rate at each stage's middle); both empty for a load of one
    stage, whose rate the method states instead."""
    stages = [r for r in run.stages if r["allocator"] == allocator]
    if not stages:
        return [], []
    first = min(r["repeat"] for r in stages)
    stages = sorted((r for r in stages if r["repeat"] == first), key=lambda r: r["stage"])
    if len(stages) < 2:
        return [], []
    points = sorted(
        (float(r["t_s"]), float(r["stage_rate"]))
        for r in run.memory
        if r.get("experiment") == "service"
        and r.get("allocator") == allocator
        and r.get("repeat") == first
        and r.get("stage_rate") is not None
    )
    edges = [(float(st["end_s"]), float(st["rate"])) for st in stages]
    band = [{"t_s": t, "rate": v} for t, v in sorted(points + edges)]
    labels = [
        {
            "t_s": (float(st["start_s"]) + float(st["end_s"])) / 2,
            "label": f"{st['name']} {float(st['rate']):g}/s",
        }
        for st in stages
    ]
    return band, labels


def _rate_band_chart(
    band: list[dict[str, Any]], labels: list[dict[str, Any]], k: float, tmax: float
) -> Any:
    """The offered rate as a filled band, its stages labelled, on the staircase's time axis."""
    x = alt.X("t:Q", title=None, scale=alt.Scale(domain=[0, tmax / k], nice=False), axis=None)
    area = (
        alt.Chart(alt.Data(values=[{"t": b["t_s"] / k, "rate": b["rate"]} for b in band]))
        .mark_area(fill=INK, opacity=0.22, stroke=INK, strokeWidth=1)
        .encode(
            x=x,
            y=alt.Y(
                "rate:Q",
                title="req/s",
                axis=alt.Axis(tickCount=2, grid=False, titleFontWeight="normal"),
            ),
        )
    )
    text = (
        alt.Chart(alt.Data(values=[{"t": lb["t_s"] / k, "label": lb["label"]} for lb in labels]))
        .mark_text(fill=INK, baseline="bottom", fontSize=10, dy=-2)
        .encode(x=x, y=alt.value(0), text="label:N")
    )
    return alt.layer(area, text).properties(width=PLOT_WIDTH, height=RATE_BAND_PX)


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
            "answer of the service and at the workers' own readings at the end of load and of "
            "idle, the sum over workers of each worker's latest live bytes, starting from what "
            "each worker held when the service was ready; drawn as steps, since a value holds "
            "until the next reading."
        )
        if live_lines > 1:
            text += (
                f" It is the median across the {live_lines} allocators, which all ran the same "
                "seeded workload."
            )
    return text


def staircase_chart(run: Run, res: Results, names: Names, live: LivePayload | None = None) -> str:
    """Memory over time from the service's launch, one line per allocator, on the phases the
    run recorded, with the live payload dashed beneath: the gap is what the allocator adds.

    The study's main figure, so it takes the content column's whole width (the stylesheet
    lets it scale to the column): its legend sits above the plot rather than beside it."""
    shown = [n for n in res.names if n in res.service]
    lines = ser.first_repeat_series(run.memory, "service", shown)
    if not lines:
        return no_chart("staircase", "the run recorded no service memory samples.")
    live = live if live is not None else live_payload(run, shown)
    order = res.grouped(sorted(lines, key=lambda n: (res.service[n].settled.center, n)))
    budget = max(50, min(600, (MAX_ROWS - 400) // len(lines)))
    tmax = max(p[-1][0] for p in lines.values())
    minutes = tmax > 300
    k = 60.0 if minutes else 1.0
    rows = [
        {"allocator": names.label(n), "t": round(t / k, 4), "mb": round(v / MB, 2)}
        for n in order
        for t, v in ser.thin(lines[n], budget)
    ]
    payload = [{"t": round(t / k, 4), "mb": round(v / MB, 2)} for t, v in ser.thin(live.line, 300)]
    spans = ser.close_gaps(
        [s for s in ser.phase_spans(run.memory, "service") if s.phase in PHASE_LABEL]
    )
    unit = "min" if minutes else "s"
    band, band_labels = rate_band(run, order[0])
    x = alt.X(
        "t:Q",
        title=f"time since the service was launched ({unit})",
        # with the rate band above, both read on one fixed time axis
        scale=alt.Scale(nice=False, domain=[0, tmax / k]) if band else alt.Scale(nice=False),
        axis=alt.Axis(labelOverlap="greedy", labelFlush=True),
    )
    y = alt.Y(
        "mb:Q",
        title="anonymous memory and live payload (MB)" if payload else "anonymous memory (MB)",
    )
    labels = [names.label(n) for n in order]
    legend = alt.Legend(
        title="leanest settled first" + (", variants after their base" if res.variants else ""),
        titleLimit=PLOT_WIDTH,  # Vega cuts a title at 180 px by default
        orient="top",
        direction="horizontal",
        columns=legend_columns(labels),
        symbolType="stroke",
        symbolStrokeWidth=2.5,
        columnPadding=18,
        offset=ROW_PX * 2 + 14,
    )
    layers = _phase_layers(spans, tmax, k)
    layers.append(
        alt.Chart(alt.Data(values=rows))
        .mark_line(strokeWidth=1.6)
        .encode(
            x=x,
            y=y,
            color=alt.Color("allocator:N", scale=names.scale(order), legend=legend),
            **_again_encoding(order, names, legend),
        )
    )
    if payload:
        layers.append(
            alt.Chart(alt.Data(values=payload))
            # steps, not slopes: a reading holds until the next one says otherwise
            .mark_line(
                stroke=INK,
                strokeWidth=1.8,
                strokeDash=[6, 4],
                opacity=0.85,
                interpolate="step-after",
            )
            .encode(x=x, y=y)
        )
        layers.append(
            alt.Chart(alt.Data(values=[payload[-1]]))
            .mark_text(fill=INK, align="right", baseline="bottom", dx=-2, dy=-4, fontSize=11)
            .encode(x="t:Q", y="mb:Q", text=alt.value("live payload"))
        )
    chart = alt.layer(*layers).properties(width=PLOT_WIDTH, height=PLOT_HEIGHT)
    if band:
        chart = alt.vconcat(
            _rate_band_chart(band, band_labels, k, tmax), chart, spacing=ROW_PX * 2 + 6
        )
    phases = "; ".join(
        f"{PHASE_LABEL[s.phase]} from {s.start_s / k:.1f} to {s.end_s / k:.1f} {unit}"
        for s in spans
    )
    label = (
        f"Line chart: anonymous memory in MB over time since launch for {len(order)} allocators"
        + ("; a dashed line shows the live payload the program held" if payload else "")
        + (f"; phases shaded: {phases}" if phases else "")
        + (
            "; above it, the rate the load offered in each stage: "
            + ", ".join(lb["label"].replace("/s", " requests/s") for lb in band_labels)
            if band
            else ""
        )
        + "."
    )
    table = _staircase_table(run, res, lines, order, live, names)
    return finish(
        "staircase",
        chart,
        label=label,
        caption=staircase_caption(spans, len(live.lines) if payload else 0)
        + (
            " The band above the chart is the rate the load offered over time (first repeat "
            f"of {names.label(order[0])}), each stage labelled with its name and rate."
            if band
            else ""
        )
        + names.aa_sentence(order, "dashed in its pair's colour")
        + names.variant_sentence(order, "as a dotted line"),
        table=table,
        summary="Data behind the staircase (first repeat of each allocator)",
    )


@dataclass(frozen=True)
class Staircase:
    run: Run
    full: Results
    res: Results
    live: LivePayload
    method: Method


class StaircaseSection(Section[Staircase]):
    name = "staircase"
    title = "Why memory climbs"

    def compute(self, loaded: Loaded) -> Staircase:
        return Staircase(loaded.run, loaded.full, loaded.res, loaded.live, loaded.method)

    def values(self, data: Staircase) -> dict[str, str]:
        return _live_values(data.res, data.live, data.method)

    def sentences(self, data: Staircase) -> Entries:
        return {
            "staircase": lambda: memory.staircase(data.run, data.res),
            "live_payload": lambda: memory.live_sentence(data.res, data.live, data.method),
        }

    def charts(self, data: Staircase) -> Entries:
        names = Names.of(data.full)
        return {"staircase": lambda: staircase_chart(data.run, data.full, names, data.live)}


def _live_values(res: Results, live: LivePayload, method: Method) -> dict[str, str]:
    """The live payload the program held (median across allocators) and when it filled."""
    svc = list(res.service.values())
    estimate = method.live_set_fill_s
    return {
        "live.ready.mb": fmt_mb(median_center([r.live_ready for r in svc])),
        "live.load_end.mb": fmt_mb(median_center([r.live_load_end for r in svc])),
        "live.idle_end.mb": fmt_mb(median_center([r.live_idle_end for r in svc])),
        "live.fill_estimate": "not recorded"
        if estimate is None
        else f"{fmt_duration(estimate)} of load",
        "live.fill_measured": fill_text(live.fill_measured_s),
        "live.fill_share": fmt_pct(FILL_SHARE),
    }
