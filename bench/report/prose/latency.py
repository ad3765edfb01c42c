"""Sentences about request latency: whether allocator choice moved p99 and p50 beyond the
band we treat as noise (bench.report.stats.latency_verdict).
"""

from __future__ import annotations

from bench.report.aggregate import Results
from bench.report.prose.rankings import noisy_text
from bench.report.stats import latency_verdict
from bench.report.units import fmt_ms, fmt_ratio, md_safe

__all__ = ["latency", "latency_median"]


def latency(res: Results) -> str:
    items = {n: r.p99 for n, r in res.service.items() if r.p99}
    v = latency_verdict(items)
    if v is None:
        return "Latency needs at least two measured allocators to compare."
    span = (
        f"p99 ranged from {fmt_ms(v.low_ms)} ({md_safe(v.lowest)}) to "
        f"{fmt_ms(v.high_ms)} ({md_safe(v.highest)})"
    )
    repeated = items[v.lowest].interval is not None and items[v.highest].interval is not None
    shaky = noisy_text(items, fmt_ms)
    if v.high_ms - v.low_ms <= v.band_ms:
        head = (
            f"Allocator choice barely moved tail latency: {span}, a gap within the "
            f"{fmt_ms(v.band_ms)} we treat as noise."
        )
    elif not v.moved:
        head = (
            f"Tail latency differed, {span}, but no more than the repeats disagreed among "
            "themselves (the gap lies within their 95% intervals or the A/A pair's drift), so "
            "this run cannot put it down to the allocator."
        )
    else:
        beyond = (
            f"beyond the {fmt_ms(v.band_ms)} we treat as noise and outside the two values' "
            "95% intervals"
            if repeated
            else f"beyond the {fmt_ms(v.band_ms)} we treat as noise"
        )
        head = (
            f"Allocator choice moved tail latency: {span}, {fmt_ratio(v.ratio)} the lowest, "
            f"{beyond}."
        )
    return " ".join(t for t in (head, shaky) if t)


def latency_median(res: Results) -> str:
    items = {n: r.p50 for n, r in res.service.items() if r.p50}
    v = latency_verdict(items)
    if v is None:
        return ""
    word = "moved" if v.moved else "barely moved"
    return (
        f"At the median the allocators {word}: p50 ran from {fmt_ms(v.low_ms)} to "
        f"{fmt_ms(v.high_ms)}."
    )
