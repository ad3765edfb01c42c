"""Under a memory limit: workers killed at the cap, and the requests they took with them.

Sentence {{ say.memory_limit }}, table {{ table.memory_limit }}, both from one `limit_run`.
Applies when the spec set a memory limit.

The runner records, per service repeat, the limit on the service's cgroup, the workers the
kernel killed at it (`oom_kills`, the first at `first_oom_s` on the run's clock), the charges
that met it (`limit_hits`) and the group's charged peak (bench.results.tables). Here each
allocator's repeats become one `LimitResult`: whether it lived under the limit (no worker
killed in any repeat), how long into the load its first worker was killed, how many kills,
and the latency and failures under the cap, as Samples so the noise rule (bench.report.stats)
judges every comparison. Every repeat counts, flagged or not: under a limit the kills that
flag a repeat are the result, not a fault of the method.

The sentences say who lived under it, who was killed, when, how often, and at what latency.
A run without a limit says so in one sentence, so the article's section is never blank.
The order of the first kills is a ranking like any other (ties under the noise rule), and
the latency under the cap is judged by the same rule as the latency section's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.datatable import Cell, Column, html_table
from bench.report.prose.rankings import names_text, not_ranked, ranking_body, value_text
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import Sample, latency_verdict, summarize
from bench.report.units import fmt_count, fmt_mb, fmt_ms, fmt_seconds, join_names, md_safe

__all__ = [
    "NO_LIMIT",
    "LimitResult",
    "LimitRun",
    "LimitSection",
    "limit_run",
    "limit_table",
    "memory_limit",
    "when_fmt",
]


@dataclass(frozen=True)
class LimitResult:
    """One allocator's repeats under the limit."""

    name: str
    repeats: int
    #: repeats in which the limit killed at least one worker
    killed_repeats: int
    oom_kills: int
    #: seconds from the start of the load to the first kill, over the repeats with a kill
    #: (negative: during the warm-up)
    first_kill_s: Sample | None
    p99: Sample | None
    errors: int
    requests: int
    peak_charged: Sample | None
    peak_anon: Sample | None
    limit_hits: int | None

    @property
    def lived(self) -> bool:
        """No worker killed in any repeat: it lived under the limit."""
        return self.killed_repeats == 0


@dataclass(frozen=True)
class LimitRun:
    """The limit of a run and every allocator's result under it (spec order)."""

    limit_bytes: int
    results: dict[str, LimitResult]
    #: seconds of load and of idle per repeat, as the spec asked
    load_s: float
    idle_s: float

    @property
    def lived(self) -> list[str]:
        return [n for n, r in self.results.items() if r.lived]

    @property
    def killed(self) -> list[str]:
        return [n for n, r in self.results.items() if not r.lived]


def _load_starts(manifest: dict[str, Any]) -> dict[tuple[str, int], float]:
    """When the load began, per (allocator, repeat), from the manifest's phase times."""
    out = {}
    for entry in manifest.get("allocators") or []:
        for p in (entry.get("phases") or {}).get("service") or []:
            if p.get("phase") == "load" and p.get("start_s") is not None:
                out[(str(entry.get("name")), int(p.get("repeat") or 0))] = float(p["start_s"])
    return out


def limit_run(run: Run) -> LimitRun | None:
    """The run's limit and the allocators' results under it; None when it set no limit."""
    rows = [
        r
        for r in run.summary
        if r.get("experiment") == "service" and r.get("memory_limit_bytes") is not None
    ]
    if not rows:
        return None
    starts = _load_starts(run.manifest)
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[str(r.get("allocator"))].append(r)
    order = [str(e.get("name")) for e in run.manifest.get("allocators") or []]
    names = [n for n in order if n in by] + sorted(n for n in by if n not in order)
    results = {}
    for name in names:
        reps = by[name]
        first = [
            float(r["first_oom_s"]) - starts.get((name, int(r.get("repeat") or 0)), 0.0)
            for r in reps
            if r.get("first_oom_s") is not None
        ]
        hits = [r.get("limit_hits") for r in reps if r.get("limit_hits") is not None]
        results[name] = LimitResult(
            name=name,
            repeats=len(reps),
            killed_repeats=sum(1 for r in reps if (r.get("oom_kills") or 0) > 0),
            oom_kills=int(sum(r.get("oom_kills") or 0 for r in reps)),
            first_kill_s=summarize(first),
            p99=summarize(r.get("p99_ms") for r in reps),
            errors=int(sum(r.get("errors") or 0 for r in reps)),
            requests=int(sum(r.get("requests") or 0 for r in reps)),
            peak_charged=summarize(r.get("peak_charged_bytes") for r in reps),
            peak_anon=summarize(r.get("peak_anon_bytes") for r in reps),
            limit_hits=int(sum(hits)) if hits else None,
        )
    spec = run.spec.get("service") or {}
    return LimitRun(
        limit_bytes=int(max(r["memory_limit_bytes"] for r in rows)),
        results=results,
        load_s=float(spec.get("load_s") or 0.0),
        idle_s=float(spec.get("idle_s") or 0.0),
    )


def when_fmt(load_s: float) -> Callable[[float], str]:
    """How a kill's time since the load began is said: '4.3 s into the load', '2.1 s into
    the idle' once the load (`load_s` long) was over, 'in the warm-up' before it began."""

    def fmt(s: float) -> str:
        if s < 0:
            return "in the warm-up"
        if s > load_s:
            return f"{s - load_s:.1f} s into the idle"
        return f"{s:.1f} s into the load"

    return fmt


def _first_kill(r: LimitResult, load_s: float) -> Cell:
    if r.first_kill_s is None:
        return Cell("none", sort=float("inf"))
    s = r.first_kill_s
    text = when_fmt(load_s)(s.center) if s.n == 1 else value_text(s, lambda x: f"{x:.1f} s")
    return Cell(text, sort=s.center)


def _sample(s: Sample | None, fmt: Any) -> Cell:
    return Cell(value_text(s, fmt), sort=s.center) if s else Cell("not recorded")


def limit_table(view: LimitRun | None) -> str:
    """Per allocator: lived or not, kills, the first kill, charged and anonymous peaks, p99
    and failed requests; '' when the run set no limit (the sentence says so)."""
    if view is None:
        return ""
    rows = []
    for name, r in view.results.items():
        lived = "yes" if r.lived else f"no: {r.killed_repeats} of {r.repeats} repeats"
        rows.append(
            [
                name,
                lived if r.repeats > 1 or r.lived else "no",
                Cell(fmt_count(r.oom_kills), sort=r.oom_kills),
                _first_kill(r, view.load_s),
                _sample(r.peak_charged, fmt_mb),
                _sample(r.peak_anon, fmt_mb),
                _sample(r.p99, fmt_ms),
                Cell(f"{fmt_count(r.errors)} of {fmt_count(r.requests)}", sort=r.errors),
            ]
        )
    return html_table(
        [
            Column("allocator"),
            Column("lived under it"),
            Column("OOM kills", numeric=True),
            Column("first kill", numeric=True, abbr="seconds after the load began"),
            Column("charged peak", numeric=True, abbr="highest charge of the cgroup"),
            Column("anon peak", numeric=True, abbr="highest anonymous memory during load"),
            Column("p99", numeric=True),
            Column("failed requests", numeric=True),
        ],
        rows,
        table_id="memory-limit-table",
        caption=f"The service under a memory limit of {fmt_mb(view.limit_bytes)} on its "
        "cgroup. Charged: everything the cgroup is charged (anonymous memory, page cache, "
        "kernel memory), the quantity the limit caps; anon: the part the allocator governs.",
    )


#: What a run without a limit says in the limit section.
NO_LIMIT = (
    "This run set no memory limit on the service. A spec's `service.memory_limit_mb` sets one "
    "on the service's cgroup, and this section then says which allocators lived under it, "
    "how soon the kernel killed the others' workers, how often, and at what latency; "
    "specs/memory-limit.yaml runs the stock allocators under a limit between the leanest "
    "and the heaviest memory of the quick study."
)


def _repeats(r: LimitResult) -> str:
    return "the run" if r.repeats == 1 else f"any of its {r.repeats} repeats"


def _lived(view: LimitRun, names: list[str]) -> str:
    if not names:
        return "No allocator lived under it."
    results = view.results
    charged = {n: results[n].peak_charged for n in names if results[n].peak_charged}
    span = f"{fmt_seconds(view.load_s)} of load and {fmt_seconds(view.idle_s)} of idle"
    if len(charged) == 1:
        ((name, peak),) = charged.items()
        peaks = f"; its charged peak was {value_text(peak, fmt_mb)}"
    elif charged:
        each = join_names([f"{md_safe(n)} {value_text(s, fmt_mb)}" for n, s in charged.items()])
        peaks = f"; charged peaks: {each}"
    else:
        peaks = ""
    return (
        f"{names_text(names)} lived under it: no worker was killed in "
        f"{_repeats(results[names[0]])} ({span}){peaks}."
    )


def _killed(view: LimitRun, names: list[str]) -> str:
    if not names:
        return ""
    results = view.results
    counts = {results[n].oom_kills for n in names}
    if len(counts) == 1:
        (count,) = counts
        kills = f"{fmt_count(count)} each"
    else:
        kills = join_names([f"{md_safe(n)} {fmt_count(results[n].oom_kills)}" for n in names])
    partial = [
        f"{md_safe(n)} in {r.killed_repeats} of {r.repeats} repeats"
        for n in names
        if (r := results[n]).killed_repeats < r.repeats
    ]
    some = f" (only {join_names(partial)})" if partial else ""
    if len(names) == 1:
        r = results[names[0]]
        when = when_fmt(view.load_s)
        first = when(r.first_kill_s.center) if r.first_kill_s else "at a time not recorded"
        return (
            f"The kernel killed workers of {md_safe(names[0])}{some}: the first {first}, "
            f"{fmt_count(r.oom_kills)} in all."
        )
    firsts: dict[str, Sample] = {n: s for n in names if (s := results[n].first_kill_s)}
    order = ranking_body(
        firsts, when_fmt(view.load_s), "the first to lose a worker", "the last", descending=False
    )
    return f"The kernel killed workers of {names_text(names)}{some}. {order} Kills in all: {kills}."


def _latency(view: LimitRun, names: Sequence[str]) -> str:
    results = view.results
    p99 = {n: s for n in names if (s := results[n].p99)}
    failed = [n for n in names if results[n].errors]
    clean = [n for n in names if n not in failed]
    if failed:
        counts = join_names(
            [
                f"{md_safe(n)} {fmt_count(results[n].errors)} of {fmt_count(results[n].requests)}"
                for n in failed
            ]
        )
        none = f"; none for {names_text(clean)}" if clean else ""
        fails = f"Failed requests, each counted at the timeout or more: {counts}{none}."
    else:
        fails = "No request failed."
    v = latency_verdict(p99)
    if v is None:
        if not p99:
            return fails
        (name,) = p99
        return f"Under the cap p99 was {value_text(p99[name], fmt_ms)}. {fails}"
    span = (
        f"p99 ranged from {fmt_ms(v.low_ms)} ({md_safe(v.lowest)}) to {fmt_ms(v.high_ms)} "
        f"({md_safe(v.highest)})"
    )
    if v.moved:
        head = (
            f"Under the cap tail latency moved: {span}, beyond the {fmt_ms(v.band_ms)} we "
            "treat as noise."
        )
    elif v.high_ms - v.low_ms <= v.band_ms:
        head = (
            f"Under the cap tail latency barely moved: {span}, within the "
            f"{fmt_ms(v.band_ms)} we treat as noise."
        )
    else:
        head = (
            f"Under the cap {span}, a gap no larger than the repeats' own disagreement (their "
            "95% intervals or the A/A pair's drift)."
        )
    return f"{head} {fails}"


def memory_limit(
    view: LimitRun | None,
    *,
    workers: int,
    ranked: Sequence[str],
    missing: Sequence[tuple[str, str]] = (),
) -> str:
    """The limit section's sentences (NO_LIMIT for a run without one).

    `ranked`: the allocators compared (the A/A duplicate left out); `missing`: those without
    service data, named so none is silently absent.
    """
    if view is None:
        return NO_LIMIT
    names = [n for n in view.results if n in ranked]
    head = (
        f"Every repeat ran the service under a memory limit of {fmt_mb(view.limit_bytes)} on "
        f"its cgroup: the supervisor and its {workers} workers together, charged for the page "
        "cache and kernel memory they use as well as for the anonymous memory the other "
        "sections measure. The kernel reclaims page cache first and kills a worker when "
        "that is not enough; uvicorn starts a new, empty one and the load goes on."
    )
    lived = [n for n in names if view.results[n].lived]
    killed = [n for n in names if not view.results[n].lived]
    parts = [head, _lived(view, lived), _killed(view, killed), _latency(view, names)]
    parts.append(not_ranked(missing))
    return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Limit:
    run: Run
    res: Results
    missing: list[tuple[str, str]]

    @cached_property
    def limited(self) -> LimitRun | None:
        return limit_run(self.run)


class LimitSection(Section[Limit]):
    name = "limit"
    title = "Under a memory limit"
    try_next = ("the service under a memory limit", "specs/memory-limit.yaml")

    def applies(self, run: Run) -> bool:
        return any(
            r.get("experiment") == "service" and r.get("memory_limit_bytes") is not None
            for r in run.summary
        )

    def compute(self, loaded: Loaded) -> Limit:
        return Limit(loaded.run, loaded.res, loaded.missing)

    def sentences(self, data: Limit) -> Entries:
        return {
            "memory_limit": lambda: memory_limit(
                data.limited,
                workers=int(specview.get(data.run.spec, "service.workers")),
                ranked=data.res.names,
                missing=data.missing,
            )
        }

    def tables(self, data: Limit, prefix: str) -> Entries:
        return {"memory_limit": lambda: limit_table(data.limited)}
