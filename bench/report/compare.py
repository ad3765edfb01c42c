"""Statistics and the judgements built on them, as small pure functions.

Every comparative word of the article ("leanest", "ties", "barely moved", "keeps") is decided
here, from numbers alone, with the thresholds named as constants so the article can state them.
Each function accepts the degenerate inputs a real run can produce: one sample, all samples
equal, nothing at all.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bench.measure.runstats import median

__all__ = [
    "FINGERPRINT_KEEP_BELOW",
    "FINGERPRINT_RETURN_FROM",
    "LATENCY_ABS_MS",
    "LATENCY_REL",
    "TIE_REL",
    "Fingerprint",
    "LatencyVerdict",
    "Sample",
    "classify_fingerprint",
    "extremes_ratio",
    "latency_verdict",
    "median_of",
    "rank",
    "shed_fraction",
    "summarize",
    "tie_band",
    "ties",
]

#: With a single repeat there is no measured noise: values closer than this fraction of the
#: larger one are called a tie (a stated threshold, printed in the article).
TIE_REL = 0.05

#: An allocator that gave back less than this fraction of its peak during idle "keeps" memory.
FINGERPRINT_KEEP_BELOW = 0.10
#: One that gave back at least this fraction "returns most" of it.
FINGERPRINT_RETURN_FROM = 0.50

#: Latency "barely moved" when every allocator's percentile is within this fraction of the
#: lowest, or within LATENCY_ABS_MS (asyncio timers alone round sends up to 1 ms).
LATENCY_REL = 0.20
LATENCY_ABS_MS = 1.0


@dataclass(frozen=True)
class Sample:
    """The repeats of one measurement: their centre (median or mean) and max-min spread."""

    values: tuple[float, ...]
    center: float
    spread: float

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def summarize(
    values: Iterable[float | None], center: Literal["median", "mean"] = "median"
) -> Sample | None:
    """Repeats to a Sample, ignoring missing values; None when nothing was measured.

    Memory uses the median (robust to one disturbed repeat); throughput the mean, as the
    original reported it, with the max-min spread beside it.
    """
    xs = tuple(float(v) for v in values if v is not None and v == v)
    if not xs:
        return None
    mid = statistics.median(xs) if center == "median" else statistics.fmean(xs)
    return Sample(values=xs, center=float(mid), spread=max(xs) - min(xs))


def tie_band(a: Sample, b: Sample, rel: float = TIE_REL) -> float:
    """How far apart a and b may be and still count as equal.

    With repeats the measured noise decides: the larger max-min spread of the two. With a
    single run each, the stated relative threshold of the larger value.
    """
    if a.n > 1 or b.n > 1:
        return max(a.spread if a.n > 1 else 0.0, b.spread if b.n > 1 else 0.0)
    return rel * max(abs(a.center), abs(b.center))


def ties(a: Sample, b: Sample, rel: float = TIE_REL) -> bool:
    """Whether a and b are within the noise of each other (equal values always tie)."""
    return abs(a.center - b.center) <= tie_band(a, b, rel)


def rank(
    items: Mapping[str, Sample], *, descending: bool = False, rel: float = TIE_REL
) -> list[tuple[str, ...]]:
    """Names in order of their centre, grouped in tiers of ties.

    A name joins the current tier when it ties with the tier's first member (ties are not
    transitive; anchoring on the leader keeps a long chain of near-equals from merging the
    best and the worst). Equal centres are ordered by name, so the result is deterministic.
    """
    sign = -1.0 if descending else 1.0
    order = sorted(items, key=lambda n: (sign * items[n].center, n))
    tiers: list[list[str]] = []
    for name in order:
        if tiers and ties(items[tiers[-1][0]], items[name], rel):
            tiers[-1].append(name)
        else:
            tiers.append([name])
    return [tuple(t) for t in tiers]


def extremes_ratio(items: Mapping[str, Sample]) -> float | None:
    """Largest centre over smallest: how widely the allocators spread (None if undefined)."""
    centers = [s.center for s in items.values()]
    if not centers or min(centers) <= 0:
        return None
    return max(centers) / min(centers)


Fingerprint = Literal["keeps", "returns some", "returns most"]


def shed_fraction(peak: float, settled: float) -> float:
    """Share of the peak given back by the end of idle (0 when settled is at or above peak)."""
    if peak <= 0:
        return 0.0
    return max(0.0, min(1.0, (peak - settled) / peak))


def classify_fingerprint(peak: float, settled: float) -> Fingerprint:
    """Keep-or-return fingerprint from the peak and the settled value of one allocator."""
    shed = shed_fraction(peak, settled)
    if shed < FINGERPRINT_KEEP_BELOW:
        return "keeps"
    if shed < FINGERPRINT_RETURN_FROM:
        return "returns some"
    return "returns most"


@dataclass(frozen=True)
class LatencyVerdict:
    """Whether allocator choice moved a latency percentile, and between which allocators."""

    moved: bool
    lowest: str
    highest: str
    low_ms: float
    high_ms: float
    band_ms: float

    @property
    def ratio(self) -> float | None:
        return self.high_ms / self.low_ms if self.low_ms > 0 else None


def latency_verdict(
    items: Mapping[str, Sample], rel: float = LATENCY_REL, abs_ms: float = LATENCY_ABS_MS
) -> LatencyVerdict | None:
    """Judge one percentile across allocators; None with fewer than two allocators.

    The band is the largest of: rel times the lowest value, abs_ms, and the largest spread of
    repeats, so neither timer granularity nor run-to-run noise reads as an allocator effect.
    """
    if len(items) < 2:
        return None
    order = sorted(items, key=lambda n: (items[n].center, n))
    lo, hi = items[order[0]], items[order[-1]]
    noise = max((s.spread for s in items.values() if s.n > 1), default=0.0)
    band = max(rel * lo.center, abs_ms, noise)
    return LatencyVerdict(
        moved=(hi.center - lo.center) > band,
        lowest=order[0],
        highest=order[-1],
        low_ms=lo.center,
        high_ms=hi.center,
        band_ms=band,
    )


def median_of(values: Sequence[float]) -> float | None:
    """Median or None for no values (a helper for callers that must not raise)."""
    return median(values)
