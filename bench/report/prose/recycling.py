"""Sentences about worker recycling: what each recycled allocator did against itself without
recycling, and what recycling cost and bought across them (bench.report.recycling pairs
them; every "lower", "higher" and "tied" follows the noise rule of the rankings).

A run without recycling gets one sentence saying so, so the section never reads as empty.
"""

from __future__ import annotations

from bench.report import recycling as rec
from bench.report import specview
from bench.report.aggregate import Results
from bench.report.run import Run
from bench.report.stats import Sample
from bench.report.units import fmt_count, fmt_mb, fmt_ms, fmt_seconds, join_names, md_safe

__all__ = ["recycling", "recycling_pair", "without_recycled"]

NO_RECYCLING = (
    "This run had no recycling variants: every worker served from the start of its run to "
    "the end, as the method requires, since a restarted worker starts a fresh heap and hides "
    "fragmentation. A spec measures what recycling does by adding, beside an allocator, a "
    "variant that sets `service: {max_requests: N}` for itself; specs/recycling.yaml does so "
    "for each allocator."
)


def without_recycled(run: Run, res: Results) -> Results:
    """The results without the variants that only recycle their workers (no environment of
    their own): they turn no allocator knob, so the knobs section leaves them to this one."""
    return rec.without_recycled(run, res)


def recycling_pair(p: rec.RecyclingPair, *, timeout_s: float, say_how: bool = True) -> str:
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
        f"{md_safe(p.name)}{how}: workers restarted {_per_repeat(p.restarts, 'time')}, "
        f"{_per_repeat(p.hit, 'load request')} hit a restarting worker and "
        f"{fmt_count(failed)} failed. Against {md_safe(p.plain)} without recycling: peak "
        f"{rec.change(p.recycled.peak, p.without.peak, fmt_mb).text}, settled "
        f"{rec.change(p.recycled.settled, p.without.settled, fmt_mb).text}, p99 "
        f"{rec.change(p99, p.without.p99, fmt_ms).text}{charged}.{env}"
    )


def _per_repeat(s: Sample | None, noun: str) -> str:
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
