"""Recycling workers: each recycled allocator against itself without recycling.

Sentence {{ say.recycling }}, table {{ table.recycling }}, both from the pairs of one run.
Applies when the spec recycles a worker (bench.report.recycled reads which do).

A spec compares recycling within one run by a variant that sets `service.max_requests` for
itself (`{name: glibc-recycled, base: glibc, service: {max_requests: 2000}}`): the pair is
the variant and its base, run without recycling. Each measure of the pair is judged by the
noise rule of the whole article (bench.report.stats.ties: 95% intervals, the A/A floor, or
the stated 5%), so every "lower", "higher" and "tied" follows the rankings' rule; the restarts
and the requests that hit a restarting worker come from the summary rows. The headline
rankings compare stock allocators; this section reads the full results, variants included,
for both names of each pair. A run without recycling gets one sentence saying so, so the
section never reads as empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.report import specview
from bench.report.aggregate import Results, ServiceResult
from bench.report.datatable import Column, html_table
from bench.report.prose.rankings import value_text
from bench.report.recycled import Recycling, recycling_of, recycling_text
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import Sample, summarize, ties
from bench.report.units import (
    fmt_count,
    fmt_mb,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    join_names,
    md_safe,
)

__all__ = [
    "NO_RECYCLING",
    "Change",
    "RecyclingPair",
    "RecyclingSection",
    "change",
    "count_text",
    "recycling",
    "recycling_pair",
    "recycling_pairs",
    "recycling_table",
]


@dataclass(frozen=True)
class RecyclingPair:
    """One allocator recycled (`name`) and the same allocator without recycling (`plain`)."""

    name: str
    plain: str
    recycling: Recycling
    recycled: ServiceResult
    without: ServiceResult
    #: restarts per repeat, and load requests per repeat that hit a restarting worker
    restarts: Sample | None
    hit: Sample | None
    #: the variant also sets environment variables of its own (a tuned allocator)
    env: dict[str, str]


def _per_repeat(run: Run, name: str, key: str) -> Sample | None:
    return summarize(
        r.get(key)
        for r in run.summary
        if r.get("allocator") == name and r.get("experiment") == "service"
    )


def recycling_pairs(run: Run, res: Results) -> list[RecyclingPair]:
    """Every recycled allocator of the run whose base ran without recycling, in spec order."""
    how = recycling_of(run.spec)
    info = {a.name: a for a in res.allocators}
    pairs = []
    for name, recycling in how.items():
        a = info.get(name)
        if recycling is None or a is None or a.same_as or name not in res.service:
            continue
        plain = a.base if a.base and a.base != name else None
        if plain is None or how.get(plain) is not None or plain not in res.service:
            continue
        pairs.append(
            RecyclingPair(
                name=name,
                plain=plain,
                recycling=recycling,
                recycled=res.service[name],
                without=res.service[plain],
                restarts=_per_repeat(run, name, "restarts"),
                hit=_per_repeat(run, name, "requests_during_restart"),
                env=dict(a.env),
            )
        )
    return pairs


@dataclass(frozen=True)
class Change:
    """One measure with recycling against without: the words, and which way it went."""

    text: str
    #: -1 lower with recycling, 0 tied (within the noise), +1 higher
    direction: int


def change(with_: Sample | None, without: Sample | None, fmt: Callable[[float], str]) -> Change:
    """'300 MB against 420 MB without, 29% lower', '..., 9.8× as high' or '..., tied' (within
    the noise rule: bench.report.stats.ties)."""
    if with_ is None or without is None:
        return Change("not measured", 0)
    head = f"{value_text(with_, fmt)} against {value_text(without, fmt)} without"
    if ties(with_, without):
        return Change(f"{head}, tied", 0)
    if without.center == 0:
        return Change(head, 1 if with_.center > 0 else -1)
    rel = (with_.center - without.center) / abs(without.center)
    if rel >= 1:  # "876% higher" reads worse than "9.8× as high"
        return Change(f"{head}, {fmt_ratio(with_.center / without.center)} as high", 1)
    word = "higher" if rel > 0 else "lower"
    return Change(f"{head}, {fmt_pct(abs(rel))} {word}", 1 if rel > 0 else -1)


def count_text(s: Sample | None) -> str:
    """A count per repeat: '12', or '12.3 per repeat (mean)' over several repeats."""
    if s is None:
        return "not recorded"
    return fmt_count(s.center) if s.n < 2 else f"{s.center:,.1f} per repeat (mean)"


def recycling_table(run: Run, res: Results) -> str:
    """Per recycled allocator: its recycling, restarts, requests that hit a restart, and
    peak, settled and p99 against the same allocator without recycling (empty: no pair)."""
    pairs = recycling_pairs(run, res)
    if not pairs:
        return ""
    rows = [
        [
            f"{p.name} (against {p.plain})",
            p.recycling.text(),
            count_text(p.restarts),
            count_text(p.hit),
            change(p.recycled.peak, p.without.peak, fmt_mb).text,
            change(p.recycled.settled, p.without.settled, fmt_mb).text,
            change(p.recycled.p99, p.without.p99, fmt_ms).text,
        ]
        for p in pairs
    ]
    return html_table(
        [
            Column("allocator"),
            Column("recycled"),
            Column("restarts", True, "workers replaced after their limit of requests"),
            Column(
                "requests hit",
                True,
                "load requests that failed or waited for a replacement while a worker restarted",
            ),
            Column("peak"),
            Column("settled"),
            Column("p99"),
        ],
        rows,
        table_id="recycling",
        caption="Each recycled allocator against the same allocator without recycling, in "
        "the same run (tied: within the noise rule of the rankings).",
    )


NO_RECYCLING = (
    "This run had no recycling variants: every worker served from the start of its run to "
    "the end, as the method requires, since a restarted worker starts a fresh heap and hides "
    "fragmentation. A spec measures what recycling does by adding, beside an allocator, a "
    "variant that sets `service: {max_requests: N}` for itself; specs/recycling.yaml does so "
    "for each allocator."
)


def recycling_pair(p: RecyclingPair, *, timeout_s: float, say_how: bool = True) -> str:
    """What one recycled allocator did, against the same allocator without recycling.

    `say_how` names its recycling (left out when an opening sentence said it for all); a p99
    that is the charge of failed requests (more than 1% failed, each counted at the request
    timeout) is said to be one.
    """
    how = f" (every worker recycled {p.recycling.text()})" if say_how else ""
    failed = p.recycled.errors
    p99 = p.recycled.p99
    charged = (
        f"; that p99 is the {fmt_seconds(timeout_s)} charged to each failed request, more than "
        "1% of them"
        if failed and p99 is not None and p99.center >= timeout_s * 1000
        else ""
    )
    env = (
        f" It also sets {join_names([f'`{md_safe(k)}`' for k in sorted(p.env)])}, so the "
        "difference is not recycling's alone."
        if p.env
        else ""
    )
    return (
        f"{md_safe(p.name)}{how}: workers restarted {_per_repeat_text(p.restarts, 'time')}, "
        f"{_per_repeat_text(p.hit, 'load request')} hit a restarting worker and "
        f"{fmt_count(failed)} failed. Against {md_safe(p.plain)} without recycling: peak "
        f"{change(p.recycled.peak, p.without.peak, fmt_mb).text}, settled "
        f"{change(p.recycled.settled, p.without.settled, fmt_mb).text}, p99 "
        f"{change(p99, p.without.p99, fmt_ms).text}{charged}.{env}"
    )


def _per_repeat_text(s: Sample | None, noun: str) -> str:
    """'12 times', '1 load request', '12.3 times a repeat on average'."""
    if s is None:
        return f"an unrecorded number of {noun}s"
    if s.n < 2:
        return f"{fmt_count(s.center)} {noun}{'' if round(s.center) == 1 else 's'}"
    return f"{s.center:,.1f} {noun}s a repeat on average"


_ALL = {2: "both", 3: "all three", 4: "all four", 5: "all five", 6: "all six"}


def _ways(parts: dict[int, list[str]], total: int) -> str:
    """'fell for a and b and was tied for c', or 'fell for all five': names by direction."""
    out = []
    for direction, verb in zip((-1, 1, 0), ("fell", "rose", "was tied"), strict=True):
        names = parts.get(direction) or []
        if not names:
            continue
        if len(names) == total > 1:
            who = _ALL.get(total, f"all {total}")
        else:
            who = join_names([md_safe(n) for n in names])
        out.append(f"{verb} for {who}")
    return join_names(out)


def _cost(pairs: list[RecyclingPair]) -> str:
    """What recycling cost (latency, failed requests) and bought (memory), across pairs."""
    by: dict[str, dict[int, list[str]]] = {"p99": {}, "settled": {}, "peak": {}}
    for p in pairs:
        for key, fmt in (("p99", fmt_ms), ("settled", fmt_mb), ("peak", fmt_mb)):
            way = change(getattr(p.recycled, key), getattr(p.without, key), fmt).direction
            by[key].setdefault(way, []).append(p.name)
    hit = sum(p.hit.center * p.hit.n for p in pairs if p.hit is not None)
    failed = sum(p.recycled.errors for p in pairs)
    failed_plain = sum(p.without.errors for p in pairs)
    n = len(pairs)
    return (
        f"What recycling cost: p99 {_ways(by['p99'], n)}; {fmt_count(hit)} load "
        f"request{'' if round(hit) == 1 else 's'} in all hit a restarting worker, and "
        f"{fmt_count(failed)} failed with recycling against {fmt_count(failed_plain)} "
        f"without. What it bought: settled memory {_ways(by['settled'], n)}, and the peak "
        f"{_ways(by['peak'], n)}."
    )


def recycling(run: Run, res: Results) -> str:
    """The section's sentences: each pair, then the cost; or why there is nothing to compare.

    `res` must be the full results (variants included), not the stock-only ranking view.
    """
    how = recycling_of(run.spec)
    recycled = [n for n, r in how.items() if r is not None]
    if not recycled:
        return NO_RECYCLING
    pairs = recycling_pairs(run, res)
    if not pairs:
        if len(recycled) == len(how):
            every = recycling_text(run)
            return (
                "Every allocator of this run recycled its workers"
                + (f" ({every})" if every else "")
                + ", so nothing ran without recycling to compare with."
            )
        return (
            f"{join_names([md_safe(n) for n in recycled])} recycled their workers, but no "
            "measured allocator of the same base ran without recycling beside them, so this "
            "run cannot say what recycling changed."
        )
    timeout_s = float(specview.get(run.spec, "service.request_timeout_s"))
    alike = len({p.recycling for p in pairs}) == 1
    opening = (
        [
            f"{'Each' if len(pairs) > 1 else 'The'} recycled variant restarted every worker "
            f"after {pairs[0].recycling.text().removeprefix('every ')}."
        ]
        if alike
        else []
    )
    body = [recycling_pair(p, timeout_s=timeout_s, say_how=not alike) for p in pairs]
    return " ".join([*opening, *body, _cost(pairs)])


@dataclass(frozen=True)
class RecyclingRun:
    run: Run
    full: Results


class RecyclingSection(Section[RecyclingRun]):
    name = "recycling"
    title = "Recycling workers"
    try_next = ("workers recycled after so many requests", "specs/recycling.yaml")

    def applies(self, run: Run) -> bool:
        return any(r is not None for r in recycling_of(run.spec).values())

    def compute(self, loaded: Loaded) -> RecyclingRun:
        return RecyclingRun(loaded.run, loaded.full)

    def sentences(self, data: RecyclingRun) -> Entries:
        # variants against their base: the whole run
        return {"recycling": lambda: recycling(data.run, data.full)}

    def tables(self, data: RecyclingRun, prefix: str) -> Entries:
        return {"recycling": lambda: recycling_table(data.run, data.full)}
