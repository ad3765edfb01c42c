"""Worker recycling in a run: which allocators recycled, each set beside the same allocator
without it, and the table of that comparison.

A spec compares recycling within one run by a variant that sets `service.max_requests` for
itself (`{name: glibc-recycled, base: glibc, service: {max_requests: 2000}}`): the pair is
the variant and its base, run without recycling. Each measure of the pair is judged by the
noise rule of the whole article (bench.report.stats.ties: 95% intervals, the A/A floor, or
the stated 5%), and the restarts and the requests that hit a restarting worker come from the
summary rows. The headline rankings compare stock allocators; this module reads the full
results, variants included, for both names of each pair.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report import specview
from bench.report.aggregate import Results, ServiceResult
from bench.report.datatable import Column, html_table
from bench.report.prose.rankings import value_text
from bench.report.run import Run
from bench.report.stats import Sample, summarize, ties
from bench.report.units import fmt_count, fmt_mb, fmt_ms, fmt_pct, fmt_ratio

__all__ = [
    "Change",
    "Recycling",
    "RecyclingPair",
    "change",
    "count_text",
    "recycling_note",
    "recycling_of",
    "recycling_pairs",
    "recycling_table",
    "recycling_text",
    "recycling_text_of",
    "without_recycled",
]


@dataclass(frozen=True)
class Recycling:
    """How an allocator's workers were recycled: after max_requests to max_requests + jitter."""

    max_requests: int
    jitter: int

    def text(self) -> str:
        """'every 200 requests', 'every 200-220 requests'."""
        if self.jitter <= 0:
            return f"every {fmt_count(self.max_requests)} requests"
        return (
            f"every {fmt_count(self.max_requests)}-{fmt_count(self.max_requests + self.jitter)} "
            "requests"
        )


def _recycling(section: dict[str, Any]) -> Recycling | None:
    limit = section.get("max_requests")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return None
    jitter = section.get("max_requests_jitter")
    return Recycling(limit, jitter if isinstance(jitter, int) else 0)


def recycling_of(spec: dict[str, Any]) -> dict[str, Recycling | None]:
    """Each allocator of a resolved spec (manifest["spec"]) with its recycling, None for none.

    A variant's own `service` keys override the spec's; the A/A duplicate recycles as its
    pair does.
    """
    base = {
        "max_requests": specview.get(spec, "service.max_requests"),
        "max_requests_jitter": specview.get(spec, "service.max_requests_jitter"),
    }
    out: dict[str, Recycling | None] = {}
    for entry in spec.get("allocators") or []:
        if isinstance(entry, str):
            out[entry] = _recycling(base)
        elif isinstance(entry, dict) and entry.get("name"):
            own = entry.get("service") if isinstance(entry.get("service"), dict) else {}
            out[str(entry["name"])] = _recycling({**base, **own})
    pair = spec.get("aa_pair")
    if isinstance(pair, str) and pair in out:
        out[f"{pair}-again"] = out[pair]
    return out


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


def recycling_text(run: Run) -> str | None:
    """How the run recycled, when every allocator did the same (None: not all alike)."""
    return recycling_text_of(recycling_of(run.spec))


def recycling_text_of(how: dict[str, Recycling | None]) -> str | None:
    """How allocators recycled, when all did the same (None: not all alike, or none)."""
    kinds = set(how.values())
    if len(kinds) == 1:
        (only,) = kinds
        return None if only is None else only.text()
    return None


def recycling_note(spec: dict[str, Any]) -> str:
    """How the spec table describes the workers' lives: never recycled, or by whom."""
    how = recycling_of(spec)
    recycled = [n for n, r in how.items() if r is not None]
    if not recycled:
        return "no per-request worker recycling, which would hide fragmentation"
    if len(recycled) == len(how) and (every := recycling_text_of(how)):
        return f"every worker recycled {every} (max_requests), which hides fragmentation"
    return (
        f"recycled only under {', '.join(recycled)} (see Recycling workers); the others' "
        "workers serve the whole run, since recycling hides fragmentation"
    )


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


def without_recycled(run: Run, res: Results) -> Results:
    """`res` without the variants that only recycle their workers (a variant of no
    environment of its own whose recycling differs from its base's): they turn no allocator
    knob, so the knobs section (bench.report.knobs) leaves them to the recycling section."""
    how = recycling_of(run.spec)
    apart = {
        a.name
        for a in res.allocators
        if a.base and not a.env and how.get(a.name) != how.get(a.base) and not a.same_as
    }
    apart |= {a.name for a in res.allocators if a.same_as in apart}
    return res.without(apart)
