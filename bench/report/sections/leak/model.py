"""Leak or retention? The service's anonymous memory set beside the program's own live heap.

A service whose memory grows prompts one question before any other: is the program holding
more (a leak, or a cache that fills), or is the allocator keeping memory the program has
freed? The two look the same from outside. The runner records both sides at the same three
moments (ready, end of load, end of idle; bench.experiments.service): the anonymous memory of
the service's processes, and the bytes the allocator itself counts as in use by the program
(`*_heap_bytes`: glibc's mallinfo2, jemalloc's stats.allocated, tcmalloc's
current_allocated_bytes, a walk of mimalloc's heap; service.allocators.heap). Their growth since the
service was ready tells the two apart:

- the anonymous memory grew and the program's heap did not (it explains under a third of the
  growth): the allocator keeps memory the program freed, **retention**;
- the heap grew about as much (over two thirds): the **program** holds it; the allocator
  only follows;
- in between: **both**;
- the anonymous memory barely grew (under 5% of the ready service): **nothing to explain**.

The verdict is made on the means of the repeats the rest of the article uses (disturbed and
flagged repeats left out unless none is clean). An allocator whose heap count is unknown is
said so, never guessed from CPython's block count, which counts a 40-byte string and a 4 MB
buffer alike; the block count is shown beside as a second witness.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Literal

from bench.report.aggregate import clean_repeats
from bench.report.datatable import Cell, Column, html_table
from bench.report.runfolders import Run
from bench.report.stats import Sample, summarize
from bench.report.units import fmt_mb

__all__ = [
    "NO_GROWTH_REL",
    "PROGRAM_ABOVE",
    "RETENTION_BELOW",
    "Growth",
    "LeakResult",
    "Verdict",
    "growth_text",
    "judge",
    "leak_results",
    "leak_table",
    "verdict_text",
]

#: Anonymous memory that grew by less than this share of the ready service grew by nothing
#: worth explaining (the noise of one repeat is about 1-2% here; see README, noise).
NO_GROWTH_REL = 0.05
#: Below this share of the growth held by the program, the allocator kept the rest.
RETENTION_BELOW = 1 / 3
#: Above this share, the program holds the growth.
PROGRAM_ABOVE = 2 / 3

Verdict = Literal["allocator", "program", "both", "none", "unknown"]


@dataclass(frozen=True)
class Growth:
    """What grew between the ready service and one later moment, and the verdict on it."""

    anon: float  # bytes the service's anonymous memory grew by (negative: it shrank)
    heap: float | None  # bytes the program's own live heap grew by (None: not counted)
    verdict: Verdict

    @property
    def kept(self) -> float | None:
        """Bytes of the growth the program does not hold: what the allocator keeps for it."""
        return None if self.heap is None else self.anon - self.heap

    @property
    def program_share(self) -> float | None:
        """The program's share of the growth (None when there is none to share or no count)."""
        if self.heap is None or self.anon <= 0:
            return None
        return self.heap / self.anon


def judge(
    anon_ready: float, anon_then: float, heap_ready: float | None, heap_then: float | None
) -> Growth:
    """The verdict on the growth from the ready service to a later moment (see the module)."""
    anon = anon_then - anon_ready
    heap = None if heap_ready is None or heap_then is None else heap_then - heap_ready
    verdict: Verdict
    if anon < NO_GROWTH_REL * anon_ready:
        verdict = "none"
    elif heap is None:
        verdict = "unknown"
    elif heap < RETENTION_BELOW * anon:
        verdict = "allocator"
    elif heap > PROGRAM_ABOVE * anon:
        verdict = "program"
    else:
        verdict = "both"
    return Growth(anon, heap, verdict)


@dataclass(frozen=True)
class LeakResult:
    """One allocator's service: both sides at the three moments, and the verdicts."""

    name: str
    repeats: int
    excluded: int
    source: str | None  # how the heap was counted (None: the allocator offers no count)
    anon_ready: Sample
    anon_load_end: Sample | None
    anon_settled: Sample
    heap_ready: Sample | None
    heap_load_end: Sample | None
    heap_idle_end: Sample | None
    blocks_ready: Sample | None
    blocks_idle_end: Sample | None
    #: from ready to the end of load, and to the end of idle (the settled memory)
    under_load: Growth | None
    at_rest: Growth

    @property
    def blocks_growth(self) -> float | None:
        """CPython's allocated blocks at the end of idle over those at ready, minus one."""
        if self.blocks_ready is None or self.blocks_idle_end is None:
            return None
        if self.blocks_ready.center <= 0:
            return None
        return self.blocks_idle_end.center / self.blocks_ready.center - 1


def _center(s: Sample | None) -> float | None:
    return None if s is None else s.center


def _result(name: str, rows: list[dict[str, Any]]) -> LeakResult | None:
    used, excluded = clean_repeats(rows, method_flags=True, memory=True)

    def mean(key: str) -> Sample | None:
        return summarize(r.get(key) for r in used)

    ready, settled, load_end = (
        mean("ready_anon_bytes"),
        mean("settled_anon_bytes"),
        mean("load_end_anon_bytes"),
    )
    if ready is None or settled is None:
        return None
    # a mean over some repeats only would pass for all of them: the heap needs every repeat
    heap = {
        at: mean(f"{at}_heap_bytes")
        if all(r.get(f"{at}_heap_bytes") is not None for r in used)
        else None
        for at in ("ready", "load_end", "idle_end")
    }
    sources = sorted({str(r["heap_source"]) for r in used if r.get("heap_source")})
    return LeakResult(
        name=name,
        repeats=len(used),
        excluded=excluded,
        source=", ".join(sources) or None,
        anon_ready=ready,
        anon_load_end=load_end,
        anon_settled=settled,
        heap_ready=heap["ready"],
        heap_load_end=heap["load_end"],
        heap_idle_end=heap["idle_end"],
        blocks_ready=mean("ready_py_blocks"),
        blocks_idle_end=mean("idle_end_py_blocks"),
        under_load=(
            None
            if load_end is None
            else judge(
                ready.center,
                load_end.center,
                _center(heap["ready"]),
                _center(heap["load_end"]),
            )
        ),
        at_rest=judge(
            ready.center, settled.center, _center(heap["ready"]), _center(heap["idle_end"])
        ),
    )


def leak_results(run: Run, names: list[str]) -> dict[str, LeakResult]:
    """Leak-or-retention results of the named allocators' services, in that order; an
    allocator without a ready and a settled value (no service measured) is left out, and so
    is a run written before the heap was recorded (no `*_py_blocks` anywhere)."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in run.summary:
        if r.get("experiment") == "service":
            by[str(r.get("allocator"))].append(r)
    if not any(r.get("ready_py_blocks") is not None for rows in by.values() for r in rows):
        return {}
    out = {}
    for name in names:
        if name in by and (result := _result(name, by[name])) is not None:
            out[name] = result
    return out


_VERDICT_TEXT: dict[str, str] = {
    "allocator": "the allocator keeps it",
    "program": "the program holds it",
    "both": "both",
    "none": "little growth",
    "unknown": "heap not counted",
}


def verdict_text(verdict: Verdict) -> str:
    """The verdict as a table cell says it."""
    return _VERDICT_TEXT[verdict]


def growth_text(x: float | None) -> str:
    """A growth in bytes as the section says it, signed: '+8.7 MB', '−1.2 MB', 'not counted'
    (None: the allocator offered no count)."""
    if x is None:
        return "not counted"
    return ("+" if x >= 0 else "−") + fmt_mb(abs(x))


def _growth_cell(x: float | None) -> Cell:
    return Cell(growth_text(x), sort=x)


def leak_table(results: dict[str, LeakResult]) -> str:
    """Per allocator: the anonymous memory and the program's heap at ready and at rest, what
    each grew by, what the allocator keeps, and the verdict; '' when nothing was recorded."""
    if not results:
        return ""
    rows = []
    for name, r in results.items():
        g = r.at_rest
        rows.append(
            [
                name,
                Cell(fmt_mb(r.anon_ready.center), sort=r.anon_ready.center),
                Cell(fmt_mb(r.anon_settled.center), sort=r.anon_settled.center),
                _growth_cell(g.anon),
                _growth_cell(g.heap),
                _growth_cell(g.kept),
                verdict_text(g.verdict),
                r.source or "none offered",
            ]
        )
    return html_table(
        [
            Column("allocator"),
            Column("anon at ready", numeric=True, abbr="anonymous memory of the ready service"),
            Column("anon settled", numeric=True, abbr="anonymous memory at the end of idle"),
            Column("anon grew", numeric=True),
            Column("program's heap grew", numeric=True, abbr="bytes malloc counts as in use"),
            Column("kept by the allocator", numeric=True, abbr="anon growth minus heap growth"),
            Column("verdict"),
            Column("heap counted by"),
        ],
        rows,
        table_id="leak-table",
        caption="From the ready service to the end of idle, summed over the workers (means "
        "of the clean repeats). The program's heap is what the allocator itself counts as in "
        "use; what the anonymous memory grew beyond it is memory the allocator keeps.",
    )
