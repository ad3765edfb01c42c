"""The leak-or-retention chart: what each allocator's service grew by, split into the part the
program holds and the part the allocator keeps.

One stacked bar per allocator, from the ready service to the end of idle: the first (blue) part
is the growth of the program's own heap (the bytes malloc counts as in use), the second
(orange) the rest of the anonymous memory's growth, which the allocator keeps resident for
memory the program freed. A bar that is mostly orange is retention; mostly blue, the program.
Growth below zero (memory that came back, a heap that shrank) is drawn as none and given
exactly in the label and table.
"""

from __future__ import annotations

import altair as alt

from bench.report.charts.figure import (
    OKABE_ITO,
    WIDTH,
    Names,
    finish,
    no_chart,
    value_axis,
)
from bench.report.datatable import Column, html_table
from bench.report.sections.leak.model import LeakResult, growth_text, verdict_text
from bench.report.svg import INK
from bench.report.units import MB

__all__ = ["CAPTION", "PARTS", "leak"]

#: What the chart encodes, in words (the takeaways are in the section's sentences).
CAPTION = (
    "What the service's anonymous memory grew by from the ready service to the "
    "end of idle, per allocator (mean of the clean repeats): in blue the growth of the "
    "program's own heap, the bytes malloc counts as in use; in orange the rest, memory the "
    "allocator keeps resident for what the program freed."
)

#: The two parts of a bar, in stacking order, and their colours (not the allocators').
PARTS = {"held by the program": OKABE_ITO[0], "kept by the allocator": OKABE_ITO[1]}


def leak(results: dict[str, LeakResult], names: Names) -> str:
    """The chart block, or a line saying why there is none."""
    if not results:
        return no_chart("leak", "the run did not record the program's live heap.")
    order = list(results)
    rows, labels = [], []
    for n in order:
        g = results[n].at_rest
        grew = max(0.0, g.anon)
        held = min(grew, max(0.0, g.heap)) if g.heap is not None else 0.0
        label = names.label(n)
        labels.append(label)
        for rank, (part, mb) in enumerate(
            (("held by the program", held), ("kept by the allocator", grew - held))
        ):
            rows.append({"allocator": label, "part": part, "mb": mb / MB, "rank": rank})
        text = f"{growth_text(g.anon)}: {verdict_text(g.verdict)}"
        rows.append({"allocator": label, "part": "label", "mb": grew / MB, "text": text})
    bars = [r for r in rows if r["part"] != "label"]
    texts = [r for r in rows if r["part"] == "label"]
    top = max((r["mb"] for r in texts), default=0.0) or 1.0
    xs = alt.Scale(domain=[0, top * 1.8], nice=False)
    plot_width = WIDTH - 120
    y = alt.Y("allocator:N", sort=labels, title=None)
    colour = alt.Color(
        "part:N",
        scale=alt.Scale(domain=list(PARTS), range=list(PARTS.values())),
        legend=alt.Legend(
            title=None, orient="top", labelColor=INK, columnPadding=28, labelLimit=240
        ),
    )
    chart = alt.layer(
        alt.Chart(alt.Data(values=bars))
        .mark_bar(height=16)
        .encode(
            y=y,
            x=alt.X(
                "mb:Q",
                stack="zero",
                scale=xs,
                axis=value_axis("grown since ready (MB)", plot_width),
            ),
            color=colour,
            order=alt.Order("rank:Q"),
        ),
        alt.Chart(alt.Data(values=texts))
        .mark_text(fill=INK, align="left", dx=7, fontSize=12)
        .encode(y=y, x=alt.X("mb:Q", scale=xs), text="text:N"),
    ).properties(width=plot_width, height=max(60, 34 * len(order)))
    table = html_table(  # no interval columns: the verdicts use the means
        [
            Column("allocator"),
            Column("anon grew", True),
            Column("program's heap grew", True),
            Column("kept by the allocator", True),
            Column("verdict"),
        ],
        [
            [
                names.row(n),
                growth_text(results[n].at_rest.anon),
                growth_text(results[n].at_rest.heap),
                growth_text(results[n].at_rest.kept),
                verdict_text(results[n].at_rest.verdict),
            ]
            for n in order
        ],
    )
    label = (
        "Stacked bar chart: for each allocator, how much the service's anonymous memory grew "
        "from ready to the end of idle, split into the growth of the program's own heap and "
        "the rest, which the allocator keeps. "
        + "; ".join(f"{r['allocator']}: {r['text']}" for r in texts)
    )
    return finish(
        "leak",
        chart,
        label=label,
        caption=CAPTION,
        table=table,
        summary=(
            "Data behind the leak-or-retention chart ("
            + (
                "mean of the clean repeats"
                if any(r.repeats > 1 for r in results.values())
                else "a single repeat"
            )
            + ")"
        ),
    )
