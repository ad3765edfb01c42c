"""What every chart shares: the palette and how allocators are named, the theme, the 95%
interval whiskers, a value axis whose labels never collide, and the <figure> around the SVG.

Colours come from the Okabe-Ito palette, fixed per allocator in spec order so an allocator keeps
its colour across charts; everything that is text or axis uses svg.INK and so follows the
page's light or dark palette. The A/A duplicate (one allocator measured a second time) is
labelled as that second run wherever a chart names it, so the drift between two identical runs
is never read as a difference between allocators. A variant (a stock allocator with a setting
changed) takes its base's colour, a lighter or dotted mark and a label saying it is a variant,
and sits beside its base (Results.grouped): it reads as that allocator tuned, not a rival.
Headline values carry their 95% interval as whiskers when the run has repeats, and none with a
single repeat (there is no interval then).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt

from bench.report.aggregate import Results
from bench.report.datatable import Column, html_table
from bench.report.stats import Sample
from bench.report.svg import INK, figure_html, render_svg, theme_svg
from bench.report.units import join_names, md_safe

__all__ = [
    "AA_MARK",
    "INTERVAL_HELP",
    "INTERVAL_LAYER",
    "MAX_ROWS",
    "OKABE_ITO",
    "VARIANT_MARK",
    "WIDTH",
    "Names",
    "by_kind",
    "bounds",
    "colours",
    "configure",
    "data_summary",
    "data_table",
    "finish",
    "interval_text",
    "no_chart",
    "repeats_phrase",
    "repeats_text",
    "value_axis",
    "whiskers",
]


#: Okabe & Ito's colour-blind-safe palette, without black (it vanishes in dark mode).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442")

#: Altair's own row limit; the staircase is thinned to stay under it.
MAX_ROWS = 5000

WIDTH = 600

#: What a chart adds to the A/A duplicate's name (already "<pair>-again") on its axis or legend.
AA_MARK = " (A/A)"

#: What a chart adds to a variant's name on its axis or legend (tables say "variant of X").
VARIANT_MARK = " (variant)"

#: The name of every interval layer, so its marks can be found in the rendered SVG (tests).
INTERVAL_LAYER = "interval"

#: Tick labels of a value axis: at least this many pixels of plot per label, and this gap
#: between neighbours; Vega hides any label that would still overlap (labelOverlap).
_PX_PER_TICK = 90
_LABEL_GAP = 6


def colours(names: Sequence[str]) -> dict[str, str]:
    """A fixed colour per allocator, by its position in the spec."""
    return {n: OKABE_ITO[i % len(OKABE_ITO)] for i, n in enumerate(names)}


@dataclass(frozen=True)
class Names:
    """How the charts name and colour allocators.

    `again` maps the A/A duplicate to the allocator it runs again, `variant` a variant to the
    stock allocator it changes. Charts key their series on `label`, so the duplicate's axis
    label and legend entry say it is the second run of a pair and a variant's that it is a
    variant, and tables use `row`, which also says which allocator it repeats or changes.
    """

    palette: dict[str, str]
    again: dict[str, str] = field(default_factory=dict)
    variant: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, res: Results) -> Names:
        """The duplicate takes its pair's colour (dashes and hollow marks tell them apart),
        and a variant its base's (a lighter or dotted mark tells it apart), so a family reads
        as one allocator, and no palette slot goes to a look-alike."""
        again = {a.name: a.same_as for a in res.allocators if a.same_as}
        variant = {a.name: a.base for a in res.allocators if a.base and not a.same_as}
        palette = colours([n for n in res.names if n not in again and n not in variant])
        for name, first in [*again.items(), *variant.items()]:
            palette[name] = palette.get(first) or OKABE_ITO[len(palette) % len(OKABE_ITO)]
        return cls(palette, again, variant)

    def is_again(self, name: str) -> bool:
        return name in self.again

    def is_variant(self, name: str) -> bool:
        return name in self.variant

    def label(self, name: str) -> str:
        if name in self.again:
            return f"{name}{AA_MARK}"
        if name in self.variant:
            return f"{name}{VARIANT_MARK}"
        return name

    def row(self, name: str) -> str:
        """The name in a data table: the duplicate says which allocator it ran again, a
        variant which one it changes, as the article's headline table does."""
        if name in self.again:
            return f"{name} (A/A of {self.again[name]})"
        if name in self.variant:
            return f"{name} (variant of {self.variant[name]})"
        return name

    def variant_sentence(self, shown: Sequence[str], drawn: str) -> str:
        """Said in a caption when the chart shows variants ('' otherwise); `drawn` says how
        the chart sets them apart ("with a lighter fill", "as a dotted line")."""
        mine = [n for n in shown if n in self.variant]
        if not mine:
            return ""
        if len(mine) == 1:
            (n,) = mine
            base = self.variant[n]
            return (
                f" {n}{VARIANT_MARK} is {base} with a setting changed, drawn in its colour {drawn}."
            )
        bases = list(dict.fromkeys(self.variant[n] for n in mine))
        of = "; ".join(
            f"{join_names([n for n in mine if self.variant[n] == b])} of {b}" for b in bases
        )
        return (
            f" The variants ({of}) are that allocator with a setting changed, each drawn in "
            f"its colour {drawn}."
        )

    def scale(self, order: Sequence[str]) -> alt.Scale:
        """The colour scale over the labels of `order`."""
        return alt.Scale(
            domain=[self.label(n) for n in order], range=[self.palette[n] for n in order]
        )

    def aa_sentence(self, shown: Sequence[str], drawn: str) -> str:
        """Said in a caption when the chart shows the duplicate ('' otherwise); `drawn` says
        how the chart sets it apart ("dashed", "hollow")."""
        pairs = [(n, self.again[n]) for n in shown if n in self.again]
        return "".join(
            f" {n}{AA_MARK}, {drawn}, is {first} run a second time (an A/A pair): the gap "
            f"between the two is how far identical runs drift on this machine."
            for n, first in pairs
        )


def by_kind(stock: Any, *, again: Any, variant: Any) -> dict[str, Any]:
    """A channel's value by the row's kind ("again" and "variant" flags in the data): the
    A/A duplicate's, a variant's, or a stock allocator's; a Vega-Lite condition."""
    return {
        "condition": [
            {"test": "datum.again", "value": again},
            {"test": "datum.variant", "value": variant},
        ],
        "value": stock,
    }


#: Room around the chart, wider at the sides than Vega needs: it measures text with its own
#: font, and the reader's "sans-serif" can be wider, so long axis labels (an A/A duplicate's
#: name) and legend labels would otherwise be cut at the SVG's edge.
PADDING = {"left": 24, "right": 24, "top": 5, "bottom": 5}


def configure(chart: Any) -> dict:
    spec = (
        chart.properties(padding=PADDING)
        .configure(background="transparent", font="sans-serif", aria=False)
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


def value_axis(title: str, plot_width: float) -> alt.Axis:
    """A quantitative x axis whose tick labels never collide, whatever the data's range.

    Few ticks for the width (one per _PX_PER_TICK pixels, where Vega's default of one per
    40 crowded labels such as "0.0" and "0.2" together once the reader's font, wider than the
    one Vega measured with, drew them), and Vega's greedy labelOverlap as the last guard: it
    drops any label that would still touch its neighbour.
    """
    return alt.Axis(
        title=title,
        tickCount=max(2, int(plot_width // _PX_PER_TICK)),
        labelOverlap="greedy",
        labelSeparation=_LABEL_GAP,
        labelFlush=True,
    )


def bounds(s: Sample | None, scale: float = 1.0) -> tuple[float, float] | None:
    """The 95% interval of a sample's mean in chart units (None: one repeat, no interval)."""
    iv = s.interval if s is not None else None
    return (iv[0] / scale, iv[1] / scale) if iv is not None else None


def interval_text(s: Sample | None, fmt: Callable[[float], str]) -> str:
    """The interval as a table cell: 'low to high', or why there is none."""
    if s is None:
        return "not measured"
    iv = s.interval
    if iv is None:
        return "one repeat, no interval"
    return f"{fmt(iv[0])} to {fmt(iv[1])}"


def whiskers(
    rows: Sequence[dict[str, Any]],
    y: alt.Y,
    title: str,
    scale: alt.Scale | None = None,
    *,
    offset: Any = None,
    **mark: Any,
) -> list[Any]:
    """The 95% interval of each row as a whisker with end caps, from its "lo" to its "hi".

    Rows without an interval (lo None: a single repeat) get none; with no interval at all
    the layer is left out, so a one-repeat run shows no whiskers anywhere. `offset` places
    several whiskers of one allocator in rows of its band (a yOffset). `title` is the
    value axis's: Vega-Lite would otherwise add the error bar's field name to it. The value
    axes start at zero (no allocator used negative memory or time), so an interval reaching
    below it is cut there (clip), and the caption says so (repeats_phrase).
    """
    x = alt.X("lo:Q", title=title, scale=scale or alt.Undefined)
    have = [r for r in rows if r.get("lo") is not None]
    if not have:
        return []
    style = {"color": INK, "thickness": 1.4, "ticks": {"size": 8}, "clip": True, **mark}
    return [
        alt.Chart(alt.Data(values=have), name=INTERVAL_LAYER)
        .mark_errorbar(**style)
        .encode(y=y, x=x, x2="hi:Q", **({"yOffset": offset} if offset is not None else {}))
    ]


def finish(name: str, chart: Any, *, label: str, caption: str, table: str, summary: str) -> str:
    svg = theme_svg(render_svg(configure(chart)), label=label, prefix=f"as-{name}")
    return figure_html(name=name, svg=svg, caption=caption, data_table=table, data_summary=summary)


def no_chart(name: str, why: str) -> str:
    return f'<p class="as-nochart" id="chart-{name}">No chart: {md_safe(why)}</p>'


def repeats_text(clean: int, excluded: int) -> str:
    """How many repeats a mean is built from, as a table cell, with the disturbed left out."""
    if not excluded:
        return str(clean)
    return f"{clean} of {clean + excluded} ({excluded} disturbed, left out)"


def data_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    intervals: Sequence[Column],
    interval_cells: Sequence[Sequence[str]],
    *,
    drawn: bool,
) -> str:
    """The table behind a chart, with its 95% interval columns only when the chart draws
    whiskers: with a single repeat every row would read "no interval" (the caption says it)."""
    if drawn:
        columns = [*columns, *intervals]
        rows = [[*r, *c] for r, c in zip(rows, interval_cells, strict=True)]
    return html_table(columns, rows)


def data_summary(what: str, drawn: bool) -> str:
    """The data table's summary line: which reduction of the repeats its numbers are."""
    how = "mean of the clean repeats, 95% interval" if drawn else "a single repeat"
    return f"Data behind {what} ({how})"


#: The heading tooltip of every interval column.
INTERVAL_HELP = "95% interval of the mean of the clean repeats"


def repeats_phrase(groups: Iterable[tuple[Sequence[Sample | None], int]]) -> str:
    """How a chart's values were reduced, for its caption: the mean of the clean repeats and
    its 95% interval (with the disturbed repeats left out), or a single repeat, no interval.

    Each group is the Samples charted from one allocator's results in one experiment and the
    repeats left out of them as disturbed (counted once per group, not once per Sample).
    """
    groups = [([s for s in samples if s is not None], k) for samples, k in groups]
    have = [s for samples, _ in groups for s in samples]
    ran = max((s.n + k for samples, k in groups for s in samples), default=0)
    if ran <= 1:
        return "a single repeat, no interval"
    text = f"mean of {ran} repeats, the whiskers its 95% interval"
    left_out = sum(k for samples, k in groups if samples)
    if left_out:
        text += f"; {left_out} disturbed repeat{'s' if left_out != 1 else ''} left out of the means"
    if any(s.n == 1 for s in have):
        text += "; a value from a single clean repeat has none"
    if any(s.interval is not None and s.interval[0] < 0 for s in have):
        text += "; a whisker reaching below zero is cut at the axis"
    return text
