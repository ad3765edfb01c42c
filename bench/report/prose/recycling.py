"""Sentences about worker recycling: what each recycled allocator did against itself without
recycling, and what recycling cost and bought across them (bench.report.recycling pairs
them; every "lower", "higher" and "tied" follows the noise rule of the rankings).

A run without recycling gets one sentence saying so, so the section never reads as empty.
"""

from __future__ import annotations

from bench.report import recycling as rec
from bench.report.aggregate import Results
from bench.report.compare import Sample
from bench.report.run import Run
from bench.report.units import fmt_count, fmt_mb, fmt_ms, join_names, md_safe

__all__ = ["recycling", "recycling_pair"]

NO_RECYCLING = (
    "This run had no recycling variants: every worker served from the start of its run to "
    "the end, as the method requires, since a restarted worker starts a fresh heap and hides "
    "fragmentation. A spec measures what recycling does by adding, beside an allocator, a "
    "variant that sets `service: {max_requests: N}` for itself; specs/recycling.yaml does so "
    "for each allocator."
)


def recycling_pair(p: rec.RecyclingPair) -> str:
    """What one recycled allocator did, against the same allocator without recycling."""
    env = (
        f" It also sets {join_names([f'`{md_safe(k)}`' for k in sorted(p.env)])}, so the "
        "difference is not recycling's alone."
        if p.env
        else ""
    )
    return (
        f"{md_safe(p.name)} recycled each worker {p.recycling.text()}: workers restarted "
        f"{_per_repeat(p.restarts, 'time')} and {_per_repeat(p.hit, 'load request')} hit a "
        f"restarting worker. Against "
        f"{md_safe(p.plain)} without recycling, its peak was "
        f"{rec.change(p.recycled.peak, p.without.peak, fmt_mb).text}, settled "
        f"{rec.change(p.recycled.settled, p.without.settled, fmt_mb).text}, p99 "
        f"{rec.change(p.recycled.p99, p.without.p99, fmt_ms).text}.{env}"
    )


def _per_repeat(s: Sample | None, noun: str) -> str:
    """'12 times', '1 load request', '12.3 times a repeat on average'."""
    if s is None:
        return f"an unrecorded number of {noun}s"
    if s.n < 2:
        return f"{fmt_count(s.center)} {noun}{'' if round(s.center) == 1 else 's'}"
    return f"{s.center:,.1f} {noun}s a repeat on average"


def _ways(parts: dict[int, list[str]], verbs: tuple[str, str, str]) -> str:
    """'fell for a and b, was tied for c': the names grouped by direction, lower first."""
    out = []
    for direction, verb in zip((-1, 1, 0), verbs, strict=True):
        if parts.get(direction):
            out.append(f"{verb} for {join_names([md_safe(n) for n in parts[direction]])}")
    return join_names(out)


def _cost(pairs: list[rec.RecyclingPair]) -> str:
    """What recycling cost (latency, failed requests) and bought (memory), across pairs."""
    by: dict[str, dict[int, list[str]]] = {"p99": {}, "settled": {}, "peak": {}}
    for p in pairs:
        for key, fmt in (("p99", fmt_ms), ("settled", fmt_mb), ("peak", fmt_mb)):
            way = rec.change(getattr(p.recycled, key), getattr(p.without, key), fmt).direction
            by[key].setdefault(way, []).append(p.name)
    hit = sum(p.hit.center * p.hit.n for p in pairs if p.hit is not None)
    failed = sum(p.recycled.errors for p in pairs)
    failed_plain = sum(p.without.errors for p in pairs)
    verbs_up = ("fell", "rose", "was tied")
    return (
        f"What recycling cost: p99 {_ways(by['p99'], verbs_up)}; {fmt_count(hit)} load "
        f"request{'' if round(hit) == 1 else 's'} in all hit a restarting worker, and "
        f"{fmt_count(failed)} failed with recycling against {fmt_count(failed_plain)} "
        f"without. What it bought: settled memory {_ways(by['settled'], verbs_up)}, and the "
        f"peak {_ways(by['peak'], verbs_up)}."
    )


def recycling(run: Run, res: Results) -> str:
    """The section's sentences: each pair, then the cost; or why there is nothing to compare.

    `res` must be the full results (variants included), not the stock-only ranking view.
    """
    how = rec.recycling_of(run.spec)
    recycled = [n for n, r in how.items() if r is not None]
    if not recycled:
        return NO_RECYCLING
    pairs = rec.recycling_pairs(run, res)
    if not pairs:
        if len(recycled) == len(how):
            every = rec.recycling_text(run)
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
    return " ".join([*(recycling_pair(p) for p in pairs), _cost(pairs)])
