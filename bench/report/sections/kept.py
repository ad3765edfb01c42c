"""Where the kept memory sits: the article's retention section, from the retention table.

Sentences {{ say.kept }}, chart {{ chart.kept }} (its data table: the components at
settled), tables {{ table.kept_sources }} and {{ table.kept_ranking }}; all from one `Kept`
per allocator. The model and its words are pure functions over the retention table's
medians (bench.measure.retention): per allocator the components at the moments that matter
(peak of load, end of load, settled), the series of pages waiting on a timer over idle, and
the allocator's return timers as read back in the workers.
The sentences follow the data: each names the component that holds the most of what the
allocator keeps, and says why that family keeps it there; a family's reason is never printed
for a component that is not there.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import altair as alt

from bench.allocators.timers import Timer
from bench.measure.retention import COMPONENT_TITLES, UNACCOUNTED_SHARE_FLAG
from bench.report.aggregate import Results
from bench.report.charts.figure import OKABE_ITO, WIDTH, Names, finish, no_chart, value_axis
from bench.report.datatable import Column, html_table
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.settling import timers_of
from bench.report.svg import INK
from bench.report.units import MB, fmt_mb, fmt_pct, fmt_seconds

__all__ = [
    "KEPT_COMPONENTS",
    "Kept",
    "KeptSection",
    "kept_from_rows",
    "summed_series",
    "kept_sentences",
    "ranking_without_lazy",
]

#: What the allocator keeps beyond the program's live bytes, in the order the bars stack.
KEPT_COMPONENTS = ("free", "timer", "metadata", "lazy", "interpreter", "unaccounted")

#: Below this a component is not worth a sentence (the sampler's own noise is about as large).
_WORTH_SAYING = 2 * MB

#: Why each family keeps free memory resident, said only when `free` is the largest kept part.
_WHY_FREE = {
    "glibc": "its heaps shrink only from the top, so a free chunk below a live one stays",
    "jemalloc": "they are the unused parts of pages that still hold live blocks",
    "tcmalloc": "gperftools keeps freed spans in its page heap and caches, and returns them "
    "at the pace of its release rate as more are freed, not while idle",
    "mimalloc": "mimalloc keeps the pages it committed for its heaps beyond the live blocks",
}


@dataclass(frozen=True)
class Kept:
    """One allocator's breakdown, summed over the workers, median over repeats.

    `settled` and `peak` map component -> bytes (None: absent); `anon_*` is the anonymous
    memory the components add up to. `timer_series` is (seconds into idle, bytes waiting on a
    timer); `timers` the return settings read back in the workers (bench.allocators.timers).
    """

    allocator: str
    family: str
    anon_settled: int
    settled: Mapping[str, int | None]
    anon_peak: int | None = None
    peak: Mapping[str, int | None] = field(default_factory=dict)
    timer_series: Sequence[tuple[float, int]] = ()
    timers: Mapping[str, Any] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)
    #: per repeat, the settled anonymous memory without the pages waiting on a timer
    without_timer: Sequence[int] = ()

    def part(self, component: str) -> int | None:
        return self.settled.get(component)

    @property
    def kept(self) -> dict[str, int]:
        """The present components beyond live, largest first."""
        present = {c: v for c in KEPT_COMPONENTS if (v := self.settled.get(c)) is not None}
        return dict(sorted(present.items(), key=lambda kv: -kv[1]))


def _free_sentence(k: Kept) -> str | None:
    free, live = k.part("free"), k.part("live")
    if free is None or free < _WORTH_SAYING:
        return None
    rest = k.part("unaccounted")
    if rest is not None and rest < -UNACCOUNTED_SHARE_FLAG * k.anon_settled:
        return (
            f"{k.allocator}'s own statistics put {fmt_mb(free)} free inside the allocator, "
            f"{fmt_mb(-rest)} more than the kernel counts resident: part of what it counts as "
            "committed was never touched or has been given back without its count knowing."
        )
    largest = next(iter(k.kept), None)
    why = _WHY_FREE.get(k.family) if largest == "free" else None
    beside = f" beside {fmt_mb(live)} live" if live is not None else ""
    text = f"{k.allocator} keeps {fmt_mb(free)} free inside the allocator{beside}"
    return f"{text}: {why}." if why else f"{text}."


def _timer_sentence(k: Kept) -> str | None:
    if not k.timer_series:
        return None
    start, end = k.timer_series[0][1], k.timer_series[-1][1]
    if max(start, end) < _WORTH_SAYING:
        return None
    decay_ms = k.timers.get("dirty_decay_ms")
    decay = f"its {fmt_seconds(decay_ms / 1000)} decay" if decay_ms else "its decay timer"
    if end < _WORTH_SAYING:
        gone_at = next(t for t, b in k.timer_series if b < _WORTH_SAYING)
        return (
            f"{k.allocator}'s pages waiting on a timer fell from {fmt_mb(start)} to none within "
            f"{fmt_seconds(gone_at)} of idle: {decay}."
        )
    text = (
        f"{k.allocator} still held {fmt_mb(end)} of pages waiting on {decay} when idle ended "
        f"({fmt_mb(start)} as idle began)"
    )
    if k.timers.get("background_thread") is False:
        text += (
            ": with no background thread its decay advances only when a worker allocates "
            "beyond its thread cache, so an idle worker keeps them until its next large request"
        )
    text += "."
    if len(k.without_timer) >= 2:
        low, high = min(k.without_timer), max(k.without_timer)
        text += (
            f" Without them its repeats settled between {fmt_mb(low)} and {fmt_mb(high)}: "
            "the spread of its settled memory is where its decay happened to stand."
        )
    return text


def _lazy_sentence(k: Kept) -> str | None:
    lazy = k.part("lazy")
    if lazy is None or lazy < _WORTH_SAYING:
        return None
    return (
        f"{fmt_mb(lazy)} of {k.allocator}'s memory was given back with MADV_FREE: the kernel "
        "still counts it, and takes it back only under memory pressure."
    )


def _unaccounted_sentence(k: Kept) -> str | None:
    rest = k.part("unaccounted")
    if rest is None or k.anon_settled <= 0:
        return None
    share = abs(rest) / k.anon_settled
    if share <= UNACCOUNTED_SHARE_FLAG or rest < 0:  # below zero: said with `free`
        return None
    return (
        f"For {k.allocator} the statistics leave {fmt_pct(share)} of the anonymous memory "
        f"({fmt_mb(rest)}) {COMPONENT_TITLES['unaccounted']}: read its breakdown with care."
    )


def kept_sentences(k: Kept) -> list[str]:
    """Two to four sentences on one allocator, each only when its numbers hold it."""
    found = (_free_sentence(k), _timer_sentence(k), _lazy_sentence(k), _unaccounted_sentence(k))
    return [s for s in found if s]


def ranking_without_lazy(kept: Sequence[Kept]) -> list[tuple[str, int, int | None]]:
    """(allocator, settled anonymous bytes, the same without lazily freed pages), leanest first
    by the second: what a memory limit would squeeze, since the kernel reclaims MADV_FREE
    pages before it charges the limit."""
    out = []
    for k in kept:
        lazy = k.part("lazy")
        out.append(
            (k.allocator, k.anon_settled, k.anon_settled - lazy if lazy is not None else None)
        )
    return sorted(out, key=lambda r: (r[2] is None, r[2] if r[2] is not None else r[1]))


def once_returned(k: Kept) -> int | None:
    """The settled memory once every page waiting on a timer has gone back (the allocator's
    own floor, whatever its timer had reached when idle ended); None without such pages."""
    timer = k.part("timer")
    return k.anon_settled - timer if timer else None


def _at_mark(rows: Iterable[Mapping[str, Any]], mark: str) -> dict[int, dict[str, int | None]]:
    """Per repeat, each component summed over the workers at one mark (None where any worker
    lacks it: a sum over some workers would pass for the service's)."""
    per: dict[int, dict[str, dict[str, int | None]]] = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        if r.get("mark") == mark:
            per[int(r["repeat"])][str(r["component"])][str(r["worker"])] = r["bytes"]
    out: dict[int, dict[str, int | None]] = {}
    for repeat, components in per.items():
        workers = set().union(*(c.keys() for c in components.values()))
        out[repeat] = {
            c: (
                sum(v for v in by.values() if v is not None)
                if by.keys() == workers and all(v is not None for v in by.values())
                else None
            )
            for c, by in components.items()
        }
    return out


def _median(values: Sequence[int | None]) -> int | None:
    if not values or any(v is None for v in values):
        return None
    return int(statistics.median(v for v in values if v is not None))


def summed_series(rows: Iterable[Mapping[str, Any]], component: str) -> list[tuple[float, int]]:
    """One component over idle, summed over the workers: at each worker's reading, the sum of
    every worker's latest reading (from the moment each has read once). Workers read on their
    own clocks, so the sum steps at every reading of any of them."""
    readings = sorted(
        (float(r["idle_t_s"]), str(r["worker"]), int(r["bytes"]))
        for r in rows
        if r.get("component") == component
        and r.get("idle_t_s") is not None
        and r.get("bytes") is not None
    )
    workers = {w for _, w, _ in readings}
    latest: dict[str, int] = {}
    out: list[tuple[float, int]] = []
    for t, worker, value in readings:
        latest[worker] = value
        if latest.keys() == workers:
            out.append((round(t, 2), sum(latest.values())))
    return out


def kept_from_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    allocator: str,
    family: str,
    timers: Mapping[str, Any] | None = None,
) -> Kept | None:
    """One allocator's `Kept` from its rows of the retention table (None without a settled
    reading): components at settled and at peak are medians over repeats of the sums over
    workers; the timer series is the median repeat's (by settled anonymous memory)."""
    mine = [r for r in rows if r.get("allocator") == allocator]
    settled = _at_mark(mine, "settled")
    if not settled:
        return None
    peak = _at_mark(mine, "peak")
    components = sorted({c for by in settled.values() for c in by} - {"anon"})
    anon_by_repeat = {rep: by.get("anon") or 0 for rep, by in settled.items()}
    ordered = sorted(anon_by_repeat, key=lambda rep: anon_by_repeat[rep])
    middle = ordered[(len(ordered) - 1) // 2]
    sources = {str(r["component"]): str(r["source"]) for r in mine if r.get("mark") == "settled"}
    return Kept(
        allocator=allocator,
        family=family,
        anon_settled=_median([by.get("anon") for by in settled.values()]) or 0,
        settled={c: _median([by.get(c) for by in settled.values()]) for c in components},
        anon_peak=_median([by.get("anon") for by in peak.values()]) if peak else None,
        peak={c: _median([by.get(c) for by in peak.values()]) for c in components} if peak else {},
        timer_series=summed_series([r for r in mine if r["repeat"] == middle], "timer"),
        without_timer=[
            by["anon"] - by["timer"]
            for _, by in sorted(settled.items())
            if by.get("anon") is not None and by.get("timer") is not None
        ],
        timers=dict(timers or {}),
        sources=sources,
    )


#: Bar colours of the components (the allocators' colours are not used: a bar is one
#: allocator, its parts are components).
_COLOURS = dict(zip(("live", *KEPT_COMPONENTS), (*OKABE_ITO, "#999999"), strict=False))


def family_of(timers: Sequence[Timer], allocator: str) -> str:
    """The family serving an allocator's processes, as its read-back timers name it."""
    return next((t.family for t in timers if t.family), allocator.split("-")[0])


def settings_of(timers: Sequence[Timer]) -> dict[str, Any]:
    """The return settings the sentences quote (`dirty_decay_ms`, `background_thread`), from
    the timers the allocator's processes read back."""
    out: dict[str, Any] = {}
    for timer in timers:
        if timer.setting == "opt.dirty_decay_ms" and timer.seconds is not None:
            out["dirty_decay_ms"] = float(timer.seconds) * 1000
        elif timer.setting == "opt.background_thread" and timer.value is not None:
            out["background_thread"] = str(timer.value).lower() == "true"
    return out


@dataclass(frozen=True)
class KeptData:
    run: Run
    full: Results
    kept: dict[str, Kept]
    #: the C++ control's breakdown per allocator, beside the service's
    control: dict[str, Kept] = field(default_factory=dict)


def _bars(data: KeptData, names: Names) -> tuple[list[dict[str, Any]], list[str]]:
    rows: list[dict[str, Any]] = []
    labels: list[str] = []
    for name, k in data.kept.items():
        for moment, parts in (("settled", k.settled), ("peak", k.peak)):
            if not parts:
                continue
            label = names.label(name)
            if label not in labels:
                labels.append(label)
            for rank, component in enumerate(("live", *KEPT_COMPONENTS)):
                value = parts.get(component)
                if value is not None and value > 0:
                    rows.append(
                        {
                            "bar": label,
                            "moment": moment,
                            "component": COMPONENT_TITLES[component],
                            "mb": value / MB,
                            "rank": rank,
                        }
                    )
    return rows, labels


def kept_chart(data: KeptData) -> str:
    """One stacked bar per allocator and moment (settled, then the peak of the load)."""
    if not data.kept:
        return no_chart("kept", "the run did not record its allocators' statistics.")
    names = Names.of(data.full)
    rows, labels = _bars(data, names)
    plot_width = WIDTH - 160
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar(height=12)
        .encode(
            y=alt.Y("bar:N", sort=labels, title=None),
            yOffset=alt.YOffset("moment:N", sort=["settled", "peak"]),
            opacity=alt.Opacity(
                "moment:N",
                scale=alt.Scale(domain=["settled", "peak"], range=[1.0, 0.45]),
                legend=None,
            ),
            x=alt.X("mb:Q", stack="zero", axis=value_axis("anonymous memory (MB)", plot_width)),
            color=alt.Color(
                "component:N",
                scale=alt.Scale(
                    domain=[COMPONENT_TITLES[c] for c in _COLOURS],
                    range=list(_COLOURS.values()),
                ),
                legend=alt.Legend(title=None, orient="top", labelColor=INK, columns=3),
            ),
            order=alt.Order("rank:Q"),
        )
        .properties(width=plot_width, height=max(60, 34 * len(labels)))
    )
    label = "Stacked bar chart: where each allocator's anonymous memory sits. " + "; ".join(
        f"{names.label(n)} settled at {fmt_mb(k.anon_settled)}" for n, k in data.kept.items()
    )
    return finish(
        "kept",
        chart,
        label=label,
        caption=(
            "Where the service's anonymous memory sits, summed over the workers: settled (the "
            "end of idle, solid bar) and at the load's peak (faint bar, each worker at its own "
            "highest reading); "
            "median of the repeats. Negative unaccounted memory is left out of the bars and "
            "given in the table."
        ),
        table=kept_table(data),
        summary="Data behind the kept-memory chart (median of the repeats, settled)",
    )


def kept_table(data: KeptData) -> str:
    """Each allocator's components at settled, MB, with the statistic each came from."""
    names = Names.of(data.full)
    columns = [Column("allocator"), Column("anon", True), Column("live", True)] + [
        Column(COMPONENT_TITLES[c], True) for c in KEPT_COMPONENTS
    ]
    body = []
    rows = [(names.row(n), k) for n, k in data.kept.items()]
    rows += [(f"{names.row(n)}, C++ control", k) for n, k in data.control.items()]
    for label, k in rows:
        cells = [fmt_mb(k.part(c)) if k.part(c) is not None else "absent" for c in KEPT_COMPONENTS]
        body.append([label, fmt_mb(k.anon_settled), fmt_mb(k.part("live")), *cells])
    return html_table(columns, body)


def control_sentence(service: Kept, control: Kept) -> str | None:
    """Whether the allocator keeps as much beside the bare C++ program: the share of the
    settled memory free inside the allocator, in the service and in the control."""
    s_free, c_free = service.part("free"), control.part("free")
    if s_free is None or c_free is None or not service.anon_settled or not control.anon_settled:
        return None
    s_share, c_share = s_free / service.anon_settled, c_free / control.anon_settled
    verdict = (
        "so its retention is the allocator's, with or without an interpreter"
        if c_share >= s_share / 2
        else "so much of what it keeps in the service follows from the interpreter's pattern"
    )
    return (
        f"Under {service.allocator}, {fmt_pct(s_share)} of the service's settled memory is "
        f"free inside the allocator and {fmt_pct(c_share)} of the C++ control's, {verdict}."
    )


def sources_table(data: KeptData) -> str:
    """Where each allocator's figures come from: per component the statistic, or why it is
    absent, as the retention table records it."""
    names = Names.of(data.full)
    shown = ("live", *KEPT_COMPONENTS[:-1])
    rows = [(names.row(n), k) for n, k in data.kept.items()]
    rows += [(f"{names.row(n)}, C++ control", k) for n, k in data.control.items()]
    return html_table(
        [Column("allocator"), *(Column(COMPONENT_TITLES[c]) for c in shown)],
        [[label, *(k.sources.get(c, "not read") for c in shown)] for label, k in rows],
    )


def ranking_table(data: KeptData) -> str:
    """The settled memory three ways: as the kernel counts it, without lazily freed pages,
    and once the pages waiting on a timer have gone back."""
    rows = ranking_without_lazy(list(data.kept.values()))
    returned = {n: once_returned(k) for n, k in data.kept.items()}
    return html_table(
        [
            Column("allocator"),
            Column("settled (kernel)", True),
            Column("without lazily freed", True),
            Column("once its timer has run", True),
        ],
        [
            [
                n,
                fmt_mb(a),
                fmt_mb(b) if b is not None else "absent",
                fmt_mb(r) if (r := returned.get(n)) is not None else "no timer",
            ]
            for n, a, b in rows
        ],
    )


class KeptSection(Section[KeptData]):
    name = "kept"
    title = "Where the kept memory sits"
    try_next = (
        "where each allocator's kept memory sits (its own statistics, every few seconds)",
        "specs/quick.yaml",
    )

    def applies(self, run: Run) -> bool:
        return bool(run.retention)

    def compute(self, loaded: Loaded) -> KeptData:
        run, full = loaded.run, loaded.full
        timers = timers_of(run)  # read back once, for both experiments
        by_experiment: dict[str, dict[str, Kept]] = {"service": {}, "control": {}}
        for experiment, found in by_experiment.items():
            rows = [r for r in run.retention if r.get("experiment", "service") == experiment]
            for name in full.names:
                own = timers.get(name, [])
                kept = kept_from_rows(
                    rows, allocator=name, family=family_of(own, name), timers=settings_of(own)
                )
                if kept is not None:
                    found[name] = kept
        return KeptData(run, full, by_experiment["service"], by_experiment["control"])

    def sentences(self, data: KeptData) -> Entries:
        def said() -> str:
            texts = [s for k in data.kept.values() for s in kept_sentences(k)]
            texts += [
                t
                for n, k in data.kept.items()
                if n in data.control and (t := control_sentence(k, data.control[n]))
            ]
            return " ".join(texts)

        return {"kept": said}

    def charts(self, data: KeptData) -> Entries:
        return {"kept": lambda: kept_chart(data)}

    def tables(self, data: KeptData, prefix: str) -> Entries:
        return {
            "kept_sources": lambda: sources_table(data),
            "kept_ranking": lambda: ranking_table(data),
        }
