"""Did the sampler catch the peak? The kernel's high-water mark held against the samples.

The peak is the highest anonymous-memory sample of the load, so a spike shorter than the
sampling interval can slip between two samples. Where the service ran in a memory cgroup the
kernel keeps its own high-water mark of the group's charge (cgroup v1
`memory.max_usage_in_bytes`, restarted as load began; v2 `memory.peak`), which misses nothing.
It counts page cache and kernel memory too, so it is not compared with the anonymous peak
directly: each is compared with its own value as load ended. The kernel's peak standing well
further above its end-of-load charge than the sampled peak stands above the end-of-load
sample is a peak the samples missed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from bench.report.units import fmt_mb, join_names, md_safe

__all__ = ["MISSED_REL", "missed_peaks", "peak_caught_sentence"]

#: A kernel peak above the sampled one by more than this share of the sampled peak (net of
#: the end-of-load values) is a peak the samples missed.
MISSED_REL = 0.02


def _gaps(rows: Iterable[dict[str, Any]]) -> dict[str, list[tuple[float, float, float]]]:
    """Per allocator: (kernel gap, sampled gap, sampled peak) of each service repeat that
    recorded both."""
    out: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in rows:
        if r.get("experiment") != "service":
            continue
        kp, ke = r.get("load_peak_charged_bytes"), r.get("load_end_charged_bytes")
        ap, ae = r.get("peak_anon_bytes"), r.get("load_end_anon_bytes")
        if None in (kp, ke, ap, ae) or not ap:
            continue
        out[str(r["allocator"])].append((kp - ke, ap - ae, ap))
    return out


def missed_peaks(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Allocator -> the most the kernel's peak stood above the samples' (bytes, net of the
    end-of-load values), for those where it exceeded MISSED_REL of the sampled peak."""
    out = {}
    for name, gaps in _gaps(rows).items():
        worst = max(k - a for k, a, _ in gaps)
        if any(k - a > MISSED_REL * p for k, a, p in gaps):
            out[name] = worst
    return out


def peak_caught_sentence(rows: list[dict[str, Any]], names: Iterable[str]) -> str:
    """Whether the sampled peaks hold against the kernel's high-water mark, from data."""
    wanted = list(names)
    gaps = {n: g for n, g in _gaps(rows).items() if n in wanted}
    if not gaps:
        return (
            "The run recorded no kernel high-water mark of the service's memory (it ran in no "
            "memory cgroup, or predates the record), so a peak briefer than a sample interval "
            "cannot be ruled out."
        )
    sources = {str(r.get("load_peak_source")) for r in rows if r.get("load_peak_source")}
    how = (
        f"restarted as load began, {', '.join(sorted(sources))}"
        if sources
        else "counted from the group's start"
    )
    missed = {n: v for n, v in missed_peaks(rows).items() if n in wanted}
    head = (
        "The kernel keeps its own high-water mark of the service's memory group, which misses "
        f"nothing between samples ({how}; it counts page cache and kernel memory too, so each "
        "is held against its own value as load ended)."
    )
    if not missed:
        worst = max(k - a for g in gaps.values() for k, a, _ in g)
        by = f"no more than {fmt_mb(worst)} further" if round(worst / 1e6, 1) > 0 else "no further"
        return (
            f"{head} For every allocator it stood {by} above its end-of-load value than the "
            "sampled peak did: the samples caught the peak."
        )
    parts = [f"{md_safe(n)} (by {fmt_mb(v)})" for n, v in missed.items()]
    return (
        f"{head} It rose above what the samples saw for {join_names(parts)}: a peak briefer "
        "than the sampling interval, so those sampled peaks are lower bounds."
    )
