"""What every chart shares: the palette, the theme, and the finished <figure> around the SVG.

Colours come from the Okabe-Ito palette, fixed per allocator in spec order so an allocator keeps
its colour across charts; everything that is text or axis uses svg.INK and so follows the
page's light or dark palette.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import altair as alt

from bench.report.compare import Sample
from bench.report.svg import INK, figure_html, render_svg, theme_svg
from bench.report.units import md_safe

__all__ = [
    "MAX_ROWS",
    "OKABE_ITO",
    "WIDTH",
    "colour_scale",
    "colours",
    "configure",
    "finish",
    "median_center",
    "no_chart",
]


#: Okabe & Ito's colour-blind-safe palette, without black (it vanishes in dark mode).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")

#: Altair's own row limit; the staircase is thinned to stay under it.
MAX_ROWS = 5000

WIDTH = 600


def colours(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per allocator, by its position in the spec."""
    return {n: OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(names)}


def configure(chart: Any) -> dict:
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


def colour_scale(order: Sequence[str], palette: dict[str, str]) -> alt.Scale:
    return alt.Scale(domain=list(order), range=[palette[n] for n in order])


def finish(name: str, chart: Any, *, label: str, caption: str, table: str, summary: str) -> str:
    svg = theme_svg(render_svg(configure(chart)), label=label, prefix=f"as-{name}")
    return figure_html(name=name, svg=svg, caption=caption, data_table=table, data_summary=summary)


def median_center(samples: Sequence[Sample | None]) -> float | None:
    """The median across allocators of their centres (the run's one live payload)."""
    centers = [x.center for x in samples if x is not None]
    return statistics.median(centers) if centers else None


def no_chart(name: str, why: str) -> str:
    return f'<p class="as-nochart" id="chart-{name}">No chart: {md_safe(why)}</p>'
