"""A run under a memory limit, reduced to what the article says about it, and its table.

The runner records, per service repeat, the limit on the service's cgroup, the workers the
kernel killed at it (`oom_kills`, the first at `first_oom_s` on the run's clock), the charges
that met it (`limit_hits`) and the group's charged peak (bench.results.tables). Here each
allocator's repeats become one `LimitResult`: whether it lived under the limit (no worker
killed in any repeat), how long into the load its first worker was killed, how many kills,
and the latency and failures under the cap, as Samples so the noise rule (bench.report.stats)
judges every comparison. Every repeat counts, flagged or not: under a limit the kills that
flag a repeat are the result, not a fault of the method.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.report.datatable import Cell, Column, html_table
from bench.report.prose.rankings import value_text
from bench.report.run import Run
from bench.report.stats import Sample, summarize
from bench.report.units import fmt_count, fmt_mb, fmt_ms

__all__ = ["LimitResult", "LimitRun", "limit_run", "limit_table", "when_fmt"]


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
