"""After the burst: what each allocator kept through a trough, and whether a second burst
reused it or grew again.

Sentences {{ say.burst }}, chart {{ chart.burst }} (its data table), table {{ table.burst }};
values `burst.*` (the stages compared, by name and rate). From the `stages` table
(bench.experiments.loadstages): per allocator, the median across its repeats of the memory
at the end of the first burst, at the end of the trough after it, and at the end of the
second burst. The section applies to a load given as stages with that shape: a stage at the
load's highest rate, a lower one after it, and the highest rate again after that.

The verdicts use the article's tie rule (bench.report.stats.TIE_REL): a figure within it
of the memory after the first burst is the same memory, on a machine whose repeats spread
about that much. The first burst is the reference of every comparison, so the shares the page
prints (of the memory after the first burst) are the ones the rule read, printed with a
decimal where they would round onto the rule's edge: +67 MB is 5.3% of one allocator's
memory and 4.8% of another's, and the page shows why the two stories differ.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt

from bench.report.aggregate import Results
from bench.report.charts.figure import WIDTH, Names, finish, no_chart
from bench.report.datatable import Column, html_table
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.series import Point, latest_at
from bench.report.stats import TIE_REL
from bench.report.units import MB, fmt_mb, fmt_ms, fmt_pct, fmt_pct_at, join_names

__all__ = [
    "AfterBurst",
    "BurstSection",
    "Shape",
    "Through",
    "burst_latency",
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


def _same(change: float, reference: float) -> bool:
    """A change within the tie rule of the figure it is held against."""
    return abs(change) <= TIE_REL * abs(reference)


def _share(change: float, t: Through) -> str:
    """A change as a share of the memory after the first burst, as the rule read it."""
    return fmt_pct_at(change / t.first_end, TIE_REL)


def _kept_through(t: Through) -> bool:
    """It held on to what the first burst left: the trough ended level with it, or higher."""
    return _same(t.given_back, t.first_end) or t.given_back < 0


def _level(t: Through) -> bool:
    """The second burst ended where the first had."""
    return _same(t.regrowth, t.first_end)


def verdict(t: Through) -> str:
    """The allocator's story through the burst in a few words (the table's last column)."""
    if _same(t.given_back, t.first_end):
        trough = "kept it through the trough"
    elif t.given_back > 0:
        trough = f"gave back {fmt_mb(t.given_back)} in the trough"
    else:
        trough = f"grew by {fmt_mb(-t.given_back)} in the trough"
    kept = _kept_through(t)
    if _level(t):
        again = "reused it" if kept else "took it again in the second burst"
    elif t.regrowth > 0:
        again = (
            f"grew again by {fmt_mb(t.regrowth)} in the second burst"
            if kept
            else f"took it again and {fmt_mb(t.regrowth)} more in the second burst"
        )
    else:
        again = f"ended the second burst {fmt_mb(-t.regrowth)} leaner"
    return f"{trough}, then {again}"


def _grew_again(t: Through) -> bool:
    return t.regrowth > 0 and not _level(t)


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
    #: per allocator, stage number -> p99 latency in ms (median across the repeats compared)
    p99: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    #: requests that failed in the two bursts, over the repeats compared
    burst_failures: int = 0


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


def burst_latency(
    rows: Sequence[Mapping[str, Any]],
    shape: Shape,
    names: Sequence[str],
    left_out: frozenset[tuple[str, int]] = frozenset(),
) -> tuple[dict[str, dict[int, float]], int]:
    """Per allocator the median p99 (ms) of its repeats in each of the two bursts, and the
    requests that failed in them, over the repeats the comparison keeps."""
    bursts = (shape.first[0], shape.second[0])
    p99: dict[str, dict[int, float]] = {}
    failures = 0
    for name in names:
        mine = [
            r
            for r in rows
            if r["allocator"] == name
            and r["stage"] in bursts
            and (name, r["repeat"]) not in left_out
        ]
        failures += sum(int(r.get("errors") or 0) for r in mine)
        for stage in bursts:
            values = [r["p99_ms"] for r in mine if r["stage"] == stage and r.get("p99_ms")]
            if values:
                p99.setdefault(name, {})[stage] = statistics.median(values)
    return p99, failures


def _stage_list(run: Run) -> list[tuple[int, str, float]]:
    """(number, name, rate) of the load's stages, as the run's first repeat recorded them."""
    seen: dict[int, tuple[int, str, float]] = {}
    for r in run.stages:
        seen.setdefault(r["stage"], (r["stage"], r["name"], r["rate"]))
    return sorted(seen.values())


def _stage_text(stage: tuple[int, str, float]) -> str:
    return f"{stage[1]} ({stage[2]:g} requests/s)"


def _each(items: Sequence[Through], amount: Any) -> str:
    """How much, with its share of the memory after the first burst: for one allocator the
    figure alone, for several each named ("jemalloc 160 MB, 26%; mimalloc-v3 110 MB, 17%")."""
    if len(items) == 1:
        x = items[0]
        return f"{fmt_mb(amount(x))}, {_share(amount(x), x)} of its memory after the first burst"
    return "; ".join(f"{x.allocator} {fmt_mb(amount(x))}, {_share(amount(x), x)}" for x in items)


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
        if trough < first and not _same(first - trough, first):
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
    leaner = [x for x in t if x.regrowth < 0 and not _level(x)]
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
    grew_kept = [x for x in grew if _kept_through(x)]
    grew_back = [x for x in grew if not _kept_through(x)]
    if grew_kept:
        they = "it" if len(grew_kept) == 1 else "they"
        parts.append(
            f"{join_names([x.allocator for x in grew_kept])} kept what the first burst left, "
            f"yet grew again in the second burst ({_each(grew_kept, lambda x: x.regrowth)}): "
            f"what {they} kept was not reused for the same traffic."
        )
    if grew_back:
        parts.append(
            f"{join_names([x.allocator for x in grew_back])} gave memory back in the trough "
            f"({_each(grew_back, lambda x: x.given_back)}), and the second burst took it "
            f"again and more: it ended above the first "
            f"({_each(grew_back, lambda x: x.regrowth)})."
        )
    if leaner:
        parts.append(
            f"{join_names([x.allocator for x in leaner])} ended the second burst below the "
            f"first ({_each(leaner, lambda x: -x.regrowth)})."
        )
        returned = [x for x in leaner if not _kept_through(x)]
        if returned:
            parts.append(
                f"In the trough, {join_names([x.allocator for x in returned])} also gave "
                f"memory back ({_each(returned, lambda x: x.given_back)})."
            )
    if first is not None and trough is not None and trough < first:
        freed = first - trough
        beyond = [
            x.allocator
            for x in t
            if x.given_back > freed and not _same(x.given_back - freed, x.given_back)
        ]
        if beyond:
            parts.append(
                f"{join_names(beyond)} gave back more than the {fmt_mb(freed)} the program "
                "itself freed in the trough: memory the burst had used beyond the program's "
                "own buffers went back too."
            )
    if (stage_latency := _latency_sentence(data)) is not None:
        parts.append(stage_latency)
    return " ".join(parts)


def _latency_sentence(data: AfterBurst) -> str | None:
    """How the app held the two bursts: the range of p99 latency across allocators in each,
    and the requests that failed; None when the stage rows carry no latency."""
    if data.shape is None:
        return None
    spans = []
    for label, stage in (("the first", data.shape.first), ("the second", data.shape.second)):
        p99 = {a: v[stage[0]] for a, v in data.p99.items() if v.get(stage[0]) is not None}
        if not p99:
            return None
        low, high = min(p99, key=p99.__getitem__), max(p99, key=p99.__getitem__)
        spans.append(f"from {fmt_ms(p99[low])} ({low}) to {fmt_ms(p99[high])} ({high}) in {label}")
    failed = (
        f"{data.burst_failures:,} request{'' if data.burst_failures == 1 else 's'} failed in them"
        if data.burst_failures
        else "every request in them succeeded"
    )
    return f"Under the bursts the app's p99 latency ran {spans[0]} and {spans[1]}; {failed}."


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
        table=burst_table(data, drawn_only=True),
        summary="Data behind the burst chart (median of the repeats)",
    )


def _signed(nbytes: float, plus: str = "+") -> str:
    """MB with its sign, a true minus for a fall (a hyphen reads as a dash in a table)."""
    return f"{plus if nbytes >= 0 else '−'}{fmt_mb(abs(nbytes))}"


def burst_table(data: AfterBurst, drawn_only: bool = False) -> str:
    """Per allocator: the three figures, what the trough gave back, the second burst's change,
    and the verdict; `drawn_only`, the three figures alone (the chart's data: the section's
    table has the rest)."""
    if data.shape is None or not data.through:
        return ""
    names = Names.of(data.full)
    sh = data.shape
    rows = [
        [
            names.row(n),
            fmt_mb(t.first_end),
            fmt_mb(t.trough_end),
            f"{_signed(t.given_back, plus='')} ({_share(abs(t.given_back), t)})",
            fmt_mb(t.second_end),
            f"{_signed(t.regrowth)} ({_share(abs(t.regrowth), t)})",  # the sign is the MB's
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
                _signed(second - first),
                "",
                "what the program itself held",
            ],
        )
    columns = [
        Column("allocator"),
        Column(f"end of {sh.first[1]}", True),
        Column(f"end of {sh.trough[1]}", True),
        Column("given back in the trough", True),
        Column(f"end of {sh.second[1]}", True),
        Column("second burst against the first", True),
        Column("repeats", True),
        Column("what it did"),
    ]
    if drawn_only:
        keep = (0, 1, 2, 4)
        return html_table([columns[i] for i in keep], [[row[i] for i in keep] for row in rows])
    return html_table(columns, rows)


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
        p99, failures = burst_latency(run.stages, shape, list(through), saturated)
        return AfterBurst(run, full, shape, through, names, live, p99, failures)

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
