"""After the burst: what each allocator kept through a trough, and whether a second burst
reused it or grew again.

Sentences {{ say.burst }}, chart {{ chart.burst }} (its data table), table {{ table.burst }};
values `burst.*` (the stages compared, by name and rate). From the `stages` table
(bench.experiments.loadstages): per allocator, the median across its repeats of the memory
at the end of the first burst, at the end of the trough after it, and at the end of the
second burst. The section applies to a load given as stages with that shape: a stage at the
load's highest rate, a lower one after it, and the highest rate again after that.

The verdicts use the article's tie rule (bench.report.stats.TIE_REL): two memory figures
within it of each other are the same memory, on a machine whose repeats spread about that
much.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt

from bench.report.aggregate import Results
from bench.report.charts.figure import WIDTH, Names, finish, no_chart
from bench.report.datatable import Column, html_table
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.series import Point, latest_at
from bench.report.stats import TIE_REL
from bench.report.units import MB, fmt_mb, fmt_pct, join_names

__all__ = [
    "AfterBurst",
    "BurstSection",
    "Shape",
    "Through",
    "burst_shape",
    "live_at_ends",
    "through_the_burst",
    "verdict",
]


@dataclass(frozen=True)
class Shape:
    """The three stages compared: (number, name, rate) of the first burst, the trough, the
    second burst."""

    first: tuple[int, str, float]
    trough: tuple[int, str, float]
    second: tuple[int, str, float]


def burst_shape(stages: Sequence[tuple[int, str, float]]) -> Shape | None:
    """The first stage at the load's highest rate, the lowest stage after it, and the next
    stage at the highest rate after that trough; None when the load has no such shape (one
    stage, a ramp up only, one burst)."""
    ordered = sorted(stages)
    if len(ordered) < 3:
        return None
    top = max(rate for _, _, rate in ordered)
    first = next(i for i, st in enumerate(ordered) if st[2] == top)
    later = [i for i in range(first + 1, len(ordered)) if ordered[i][2] == top]
    for second in later:
        between = ordered[first + 1 : second]
        if between and min(st[2] for st in between) < top:
            trough = min(between, key=lambda st: (st[2], -st[0]))
            return Shape(ordered[first], trough, ordered[second])
    return None


@dataclass(frozen=True)
class Through:
    """One allocator through the burst, bytes, median across its repeats."""

    allocator: str
    first_end: float
    trough_end: float
    second_end: float
    repeats: int

    @property
    def given_back(self) -> float:
        """What the trough returned of the first burst's memory (negative: it grew)."""
        return self.first_end - self.trough_end

    @property
    def regrowth(self) -> float:
        """How much more the second burst ended at than the first."""
        return self.second_end - self.first_end


def through_the_burst(
    rows: Sequence[Mapping[str, Any]],
    shape: Shape,
    names: Sequence[str],
    left_out: frozenset[tuple[str, int]] = frozenset(),
) -> dict[str, Through]:
    """Each allocator's memory at the end of the three stages, median across the repeats
    that ran all three (in the order of `names`; one with no such repeat is left out), but
    the (allocator, repeat) pairs `left_out`: a saturated repeat measured a queue, not the
    burst's traffic."""
    out: dict[str, Through] = {}
    wanted = (shape.first[0], shape.trough[0], shape.second[0])
    for name in names:
        per_repeat: dict[int, dict[int, int]] = {}
        for r in rows:
            if (name, r["repeat"]) in left_out:
                continue
            if r["allocator"] == name and r.get("end_anon_bytes") is not None:
                per_repeat.setdefault(r["repeat"], {})[r["stage"]] = r["end_anon_bytes"]
        whole = [ends for ends in per_repeat.values() if all(s in ends for s in wanted)]
        if whole:
            first, trough, second = (statistics.median(e[s] for e in whole) for s in wanted)
            out[name] = Through(name, first, trough, second, len(whole))
    return out


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= TIE_REL * max(abs(a), abs(b))


def verdict(t: Through) -> str:
    """The allocator's story through the burst in a few words (the table's last column)."""
    kept = "kept it through the trough" if _same(t.first_end, t.trough_end) else ""
    if not kept:
        kept = (
            f"gave back {fmt_mb(t.given_back)} in the trough"
            if t.given_back > 0
            else f"grew by {fmt_mb(-t.given_back)} in the trough"
        )
    if _same(t.first_end, t.second_end):
        again = "reused it" if kept.startswith("kept") else "took it again in the second burst"
    elif t.regrowth > 0:
        again = f"grew again by {fmt_mb(t.regrowth)} in the second burst"
    else:
        again = f"ended the second burst {fmt_mb(-t.regrowth)} leaner"
    return f"{kept}, then {again}"


def _grew_again(t: Through) -> bool:
    return t.regrowth > 0 and not _same(t.first_end, t.second_end)


@dataclass(frozen=True)
class AfterBurst:
    run: Run
    full: Results
    shape: Shape | None
    through: dict[str, Through]
    #: allocators with a saturated repeat, left out of `through`
    saturated: tuple[str, ...] = ()
    #: the live payload the program held at the end of the three stages, bytes, median
    #: across allocators (first repeat of each); None where the run has no answers then
    live: tuple[float | None, float | None, float | None] = (None, None, None)


def live_at_ends(
    rows: Sequence[Mapping[str, Any]], shape: Shape, lines: Mapping[str, Sequence[Point]]
) -> tuple[float | None, float | None, float | None]:
    """The live payload at the end of the first burst, the trough and the second burst: per
    allocator its line's value at its first repeat's stage ends, then the median across
    allocators (all ran the same seeded workload)."""
    ends: list[list[float]] = [[], [], []]
    for name, line in lines.items():
        mine = [r for r in rows if r["allocator"] == name]
        if not mine or not line:
            continue
        first = min(r["repeat"] for r in mine)
        at = {r["stage"]: r["end_s"] for r in mine if r["repeat"] == first}
        for k, stage in enumerate((shape.first, shape.trough, shape.second)):
            if stage[0] in at and (v := latest_at(line, at[stage[0]])) is not None:
                ends[k].append(v)
    a, b, c = (statistics.median(e) if e else None for e in ends)
    return a, b, c


def _stage_list(run: Run) -> list[tuple[int, str, float]]:
    """(number, name, rate) of the load's stages, as the run's first repeat recorded them."""
    seen: dict[int, tuple[int, str, float]] = {}
    for r in run.stages:
        seen.setdefault(r["stage"], (r["stage"], r["name"], r["rate"]))
    return sorted(seen.values())


def _stage_text(stage: tuple[int, str, float]) -> str:
    return f"{stage[1]} ({stage[2]:g} requests/s)"


def _kept_through(t: Through) -> bool:
    return _same(t.first_end, t.trough_end) or t.given_back < 0


def _each(items: Sequence[Through], amount: Any) -> str:
    """How much, with its share of the memory after the first burst: for one allocator the
    figure alone, for several each named ("jemalloc 160 MB, 26%; mimalloc-v3 110 MB, 17%")."""
    if len(items) == 1:
        x = items[0]
        share = fmt_pct(amount(x) / x.first_end)
        return f"{fmt_mb(amount(x))}, {share} of its memory after the first burst"
    return "; ".join(
        f"{x.allocator} {fmt_mb(amount(x))}, {fmt_pct(amount(x) / x.first_end)}" for x in items
    )


def burst_sentences(data: AfterBurst) -> str:
    """Per allocator, one of four stories: kept what the first burst left and reused it, gave
    it back and took it again, grew again, or ended the second burst leaner; those that gave
    memory back in the trough are named with how much."""
    if data.shape is None or not data.through:
        if data.shape is not None and data.saturated:
            return (
                f"The app could not keep up with the burst in any repeat of "
                f"{join_names(list(data.saturated))} (saturated): their memory is that of a "
                "queue, not of the burst's traffic, so nothing here compares them; lower the "
                "burst's rate and run again."
            )
        return "The run recorded no burst, trough and second burst to compare."
    t = list(data.through.values())
    first, trough, second = data.live
    parts = []
    if data.saturated:
        parts.append(
            f"Left out: the saturated repeats of {join_names(list(data.saturated))}, where the "
            "app could not keep up (their memory is that of a queue)."
        )
    if first is not None and trough is not None and second is not None:
        if trough < first and not _same(first, trough):
            parts.append(
                f"The program itself held {fmt_mb(first)} at the end of the first burst, "
                f"{fmt_mb(trough)} at the end of the trough and {fmt_mb(second)} at the end "
                "of the second burst: what it freed in the trough an allocator could give "
                "back, and the rest of each allocator's memory is what it kept."
            )
        else:
            parts.append(
                f"The program itself held about as much at the end of the trough "
                f"({fmt_mb(trough)}) as at the end of the first burst ({fmt_mb(first)}): "
                "its live set stayed as large, so the trough freed little that an allocator "
                "could give back, and what follows says little about keeping after a burst."
            )
    grew = sorted((x for x in t if _grew_again(x)), key=lambda x: -x.regrowth)
    leaner = [x for x in t if x.regrowth < 0 and not _same(x.first_end, x.second_end)]
    level = [x for x in t if x not in grew and x not in leaner]
    reused = [x.allocator for x in level if _kept_through(x)]
    again = [x for x in level if not _kept_through(x)]
    if reused:
        parts.append(
            f"{join_names(reused)} kept through the trough what the first burst left, and the "
            f"second burst reused it: it ended within {fmt_pct(TIE_REL)} of the first."
        )
    if again:
        parts.append(
            f"{join_names([x.allocator for x in again])} gave memory back in the trough "
            f"({_each(again, lambda x: x.given_back)}) and took it again in the second burst, "
            f"which ended within {fmt_pct(TIE_REL)} of the first: returned memory is faulted in "
            "anew when the traffic comes back."
        )
    if grew:
        they = "it" if len(grew) == 1 else "they"
        parts.append(
            f"{join_names([x.allocator for x in grew])} grew again in the second burst "
            f"({_each(grew, lambda x: x.regrowth)}): what {they} kept from the first burst was not "
            "reused for the same traffic."
        )
    if leaner:
        parts.append(
            f"{join_names([x.allocator for x in leaner])} ended the second burst below the "
            f"first ({_each(leaner, lambda x: -x.regrowth)})."
        )
    returned = [x for x in grew + leaner if not _kept_through(x)]
    if returned:
        parts.append(
            f"In the trough, {join_names([x.allocator for x in returned])} also gave memory "
            f"back ({_each(returned, lambda x: x.given_back)})."
        )
    return " ".join(parts)


def burst_chart(data: AfterBurst) -> str:
    """Memory at the end of each of the three stages, one line per allocator."""
    if data.shape is None or not data.through:
        return no_chart("burst", "the run recorded no burst, trough and second burst.")
    names = Names.of(data.full)
    sh = data.shape
    moments = [
        f"end of {sh.first[1]}",
        f"end of {sh.trough[1]}",
        f"end of {sh.second[1]}",
    ]
    order = list(data.through)
    rows = [
        {"allocator": names.label(n), "moment": m, "mb": round(v / MB, 2)}
        for n, t in data.through.items()
        for m, v in zip(moments, (t.first_end, t.trough_end, t.second_end), strict=True)
    ]
    plot_width = WIDTH - 180
    base = alt.Chart(alt.Data(values=rows)).encode(
        x=alt.X("moment:N", sort=moments, title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("mb:Q", title="anonymous memory (MB)", scale=alt.Scale(zero=False)),
        color=alt.Color(
            "allocator:N",
            scale=names.scale(order),
            legend=alt.Legend(title=None, orient="right"),
        ),
    )
    chart = (base.mark_line(strokeWidth=1.6) + base.mark_point(filled=True, size=40)).properties(
        width=plot_width, height=260
    )
    label = "Line chart: memory at the end of the first burst, the trough and the second burst. "
    label += "; ".join(
        f"{names.label(t.allocator)} {fmt_mb(t.first_end)}, {fmt_mb(t.trough_end)}, "
        f"{fmt_mb(t.second_end)}"
        for t in data.through.values()
    )
    return finish(
        "burst",
        chart,
        label=label,
        caption=(
            f"The service's anonymous memory at the end of the first burst "
            f"({_stage_text(sh.first)}), of the trough after it ({_stage_text(sh.trough)}) "
            f"and of the second burst ({_stage_text(sh.second)}): the last sample of each "
            "stage, median of the repeats."
        ),
        table=burst_table(data),
        summary="Data behind the burst chart (median of the repeats)",
    )


def burst_table(data: AfterBurst) -> str:
    """Per allocator: the three figures, what the trough gave back, the second burst's change,
    and the verdict."""
    if data.shape is None or not data.through:
        return ""
    names = Names.of(data.full)
    sh = data.shape
    rows = [
        [
            names.row(n),
            fmt_mb(t.first_end),
            fmt_mb(t.trough_end),
            f"{fmt_mb(t.given_back)} ({fmt_pct(t.given_back / t.first_end)})",
            fmt_mb(t.second_end),
            f"{'+' if t.regrowth >= 0 else '−'}{fmt_mb(abs(t.regrowth))}",
            str(t.repeats),
            verdict(t),
        ]
        for n, t in data.through.items()
    ]
    if all(v is not None for v in data.live):
        first, trough, second = data.live
        assert first is not None and trough is not None and second is not None
        rows.insert(
            0,
            [
                "live payload (median across allocators)",
                fmt_mb(first),
                fmt_mb(trough),
                fmt_mb(first - trough),
                fmt_mb(second),
                f"{'+' if second >= first else '−'}{fmt_mb(abs(second - first))}",
                "",
                "what the program itself held",
            ],
        )
    return html_table(
        [
            Column("allocator"),
            Column(f"end of {sh.first[1]}", True),
            Column(f"end of {sh.trough[1]}", True),
            Column("given back in the trough", True),
            Column(f"end of {sh.second[1]}", True),
            Column("second burst against the first", True),
            Column("repeats", True),
            Column("what it did"),
        ],
        rows,
    )


class BurstSection(Section[AfterBurst]):
    name = "burst"
    title = "After the burst"
    try_next = (
        "what each allocator keeps after a burst, and whether a second burst reuses it",
        "specs/burst.yaml",
    )

    def applies(self, run: Run) -> bool:
        return burst_shape(_stage_list(run)) is not None

    def compute(self, loaded: Loaded) -> AfterBurst:
        run, full = loaded.run, loaded.full
        shape = burst_shape(_stage_list(run))
        if shape is None:
            return AfterBurst(run, full, None, {})
        saturated = frozenset(
            (str(r["allocator"]), int(r["repeat"]))
            for r in run.summary
            if r.get("experiment") == "service" and r.get("saturated")
        )
        through = through_the_burst(run.stages, shape, full.names, saturated)
        live = live_at_ends(run.stages, shape, loaded.live.lines)
        names = tuple(dict.fromkeys(a for a, _ in sorted(saturated)))
        return AfterBurst(run, full, shape, through, names, live)

    def values(self, data: AfterBurst) -> dict[str, str]:
        sh = data.shape
        if sh is None:
            return {}
        return {
            "burst.first": _stage_text(sh.first),
            "burst.trough": _stage_text(sh.trough),
            "burst.second": _stage_text(sh.second),
        }

    def sentences(self, data: AfterBurst) -> Entries:
        return {"burst": lambda: burst_sentences(data)}

    def charts(self, data: AfterBurst) -> Entries:
        return {"burst": lambda: burst_chart(data)}

    def tables(self, data: AfterBurst, prefix: str) -> Entries:
        return {"burst": lambda: burst_table(data)}
