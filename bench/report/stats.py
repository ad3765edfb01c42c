"""Statistics and the judgements built on them, as small pure functions.

Every comparative word of the article ("leanest", "tied", "too noisy to rank", "barely
moved", "keeps") is decided here, from numbers alone, with the thresholds named as constants
so the article can state them. Each function accepts the degenerate inputs a real run can
produce: one sample, all samples equal, nothing at all.

The noise rule, once: a measurement repeated n >= 2 times carries a 95% interval (Student's
t around the mean of its clean repeats, `t_interval`), and two allocators tie when their
intervals overlap. With one repeat there is no interval; two values then tie when they are
closer than the run's noise floor: the relative difference of its A/A pair (one allocator run
twice, `floor_rel`, never under MIN_FLOOR_REL) when it had one, else the stated TIE_REL. A
measurement whose interval is wider than NOISY_REL of its value on either side is too noisy
to rank and is named apart, as are a value left with one repeat among values with intervals
(`lone`) and a settled value still falling when the idle ended (`falling`). The whole rule,
for readers: docs/guide/data-format.md.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FINGERPRINT_KEEP_BELOW",
    "FINGERPRINT_RETURN_FROM",
    "LATENCY_ABS_MS",
    "LATENCY_REL",
    "MIN_FLOOR_REL",
    "NOISY_REL",
    "TIE_REL",
    "Fingerprint",
    "LatencyVerdict",
    "Sample",
    "classify_fingerprint",
    "extremes_ratio",
    "ranked",
    "kendall_tau",
    "reversed_pairs",
    "falling",
    "latency_verdict",
    "lone",
    "noisy",
    "rank",
    "relative_difference",
    "shed_fraction",
    "summarize",
    "t_interval",
    "t_quantile",
    "ties",
    "too_noisy",
]

#: With a single repeat and no A/A pair there is no measured noise: values closer than this
#: fraction of the larger one are called a tie (a stated threshold, printed in the article).
TIE_REL = 0.05

#: The A/A floor is one draw of the machine's drift and can land near zero by chance (two
#: glibc runs settled 0.03% apart in one run, 0.19% in another): below this it is not trusted.
MIN_FLOOR_REL = 0.01

#: A 95% interval reaching further than this fraction of its value on either side says the
#: repeats disagree too much to place the allocator in a ranking: it is named as too noisy.
NOISY_REL = 0.20

#: An allocator that gave back less than this fraction of its peak during idle "keeps" memory.
FINGERPRINT_KEEP_BELOW = 0.10
#: One that gave back at least this fraction "returns most" of it.
FINGERPRINT_RETURN_FROM = 0.50

#: Latency "barely moved" when every allocator's percentile is within this fraction of the
#: lowest, or within LATENCY_ABS_MS (asyncio timers alone round sends up to 1 ms).
LATENCY_REL = 0.20
LATENCY_ABS_MS = 1.0

#: Two-sided 95% quantiles of Student's t by degrees of freedom (standard tables).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile(df: int) -> float:
    """The 97.5% quantile of Student's t with df degrees of freedom (df >= 1).

    Tabulated to 30; beyond, the normal quantile with the first Cornish-Fisher correction,
    which is within 0.001 of the exact value there.
    """
    if df < 1:
        raise ValueError("a t quantile needs at least one degree of freedom")
    if df <= len(_T975):
        return _T975[df - 1]
    return _Z975 + (_Z975**3 + _Z975) / (4 * df)


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% interval of the mean of `values` (None for fewer than two values).

    Student's t suits the few repeats a benchmark affords (3 here): it widens the interval
    for the uncertainty of the standard deviation itself, where a bootstrap of three values
    would only return their range.
    """
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    half = t_quantile(len(values) - 1) * statistics.stdev(values) / math.sqrt(len(values))
    return (mean - half, mean + half)


@dataclass(frozen=True)
class Sample:
    """The repeats of one measurement: their mean, max-min spread and 95% interval.

    `floor_rel` is the run's A/A noise floor for this measure (None without an A/A pair);
    `excluded` counts the repeats left out because the run flagged them as disturbed.
    """

    values: tuple[float, ...]
    center: float
    spread: float
    floor_rel: float | None = None
    excluded: int = 0
    #: a settled value whose memory was still falling when the idle ended, in every repeat
    #: kept: the idle's length in s (None: it had settled). Never ranked as settled.
    falling_after_s: float | None = None
    #: every repeat behind it ran while the machine was busy (none was clean, so none could
    #: be left out): its place in a ranking is provisional, and the sentences say so
    busy: bool = False
    #: every repeat behind it was saturated (the app could not keep up with the asked rate):
    #: a measurement of a queue, never ranked
    saturated: bool = False

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def placeable(self) -> bool:
        """Whether a ranking may place it at all: not still falling when the idle ended, not
        measured in saturation (noise and lone repeats are judged against the others)."""
        return self.falling_after_s is None and not self.saturated

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def interval(self) -> tuple[float, float] | None:
        return t_interval(self.values)

    @property
    def half_width_rel(self) -> float | None:
        """Half the interval's width as a fraction of the value (None without an interval)."""
        iv = self.interval
        if iv is None:
            return None
        if self.center == 0:
            return 0.0 if iv[0] == iv[1] else math.inf
        return (iv[1] - iv[0]) / 2 / abs(self.center)


def summarize(
    values: Iterable[float | None],
    center: Literal["mean", "median"] = "mean",
    *,
    excluded: int = 0,
) -> Sample | None:
    """Repeats to a Sample, ignoring missing values; None when nothing was measured.

    The centre is the mean, the point its interval is built around; disturbed repeats are
    left out before this (bench.report.aggregate), so the median's robustness is not needed.
    """
    xs = tuple(float(v) for v in values if v is not None and v == v)
    if not xs:
        return None
    mid = statistics.median(xs) if center == "median" else statistics.fmean(xs)
    return Sample(values=xs, center=float(mid), spread=max(xs) - min(xs), excluded=excluded)


def relative_difference(a: float, b: float) -> float:
    """|a - b| over the larger magnitude (0 when both are 0): the A/A floor of one measure."""
    big = max(abs(a), abs(b))
    return abs(a - b) / big if big else 0.0


def too_noisy(s: Sample) -> bool:
    """Whether the repeats disagree too much to rank this measurement (NOISY_REL)."""
    rel = s.half_width_rel
    return rel is not None and rel > NOISY_REL


def noisy(items: Mapping[str, Sample]) -> list[str]:
    """Names of the measurements too noisy to rank, in order of their value."""
    return sorted((n for n, s in items.items() if too_noisy(s)), key=lambda n: (items[n].center, n))


def lone(items: Mapping[str, Sample]) -> list[str]:
    """Names left with a single repeat where others have an interval, in order of value.

    One repeat has no interval, so nothing says how far it would move on another run, and a
    rule that lets it tie or beat an interval would rank a guess above a measurement: such a
    value is named apart, never ranked. Where every value is single (a run of one repeat),
    the A/A floor or TIE_REL decide ties instead (`ties`).
    """
    if not any(s.n >= 2 for s in items.values()):
        return []
    return sorted((n for n, s in items.items() if s.n < 2), key=lambda n: (items[n].center, n))


def falling(items: Mapping[str, Sample]) -> list[str]:
    """Names of the settled values still falling when the idle ended, in order of value."""
    return sorted(
        (n for n, s in items.items() if s.falling_after_s is not None),
        key=lambda n: (items[n].center, n),
    )


def _floor(a: Sample, b: Sample, rel: float) -> float:
    """The tie threshold of two single values: the A/A floor (never under MIN_FLOOR_REL),
    else `rel`."""
    floors = [f for f in (a.floor_rel, b.floor_rel) if f is not None]
    return max(MIN_FLOOR_REL, *floors) if floors else rel


def ties(a: Sample, b: Sample, rel: float = TIE_REL) -> bool:
    """Whether a and b are within the noise of each other (equal values always tie).

    Both repeated: their 95% intervals overlap. One repeated: the single value lies inside
    the other's interval, or within the floor. Neither: within the floor, the A/A difference
    of the run when it had a pair, else `rel` of the larger value.
    """
    if a.center == b.center:
        return True
    ia, ib = a.interval, b.interval
    if ia is not None and ib is not None:
        return ia[0] <= ib[1] and ib[0] <= ia[1]
    one_side = ia or ib
    single = b if ia is not None else a
    if one_side is not None and one_side[0] <= single.center <= one_side[1]:
        return True
    return abs(a.center - b.center) <= _floor(a, b, rel) * max(abs(a.center), abs(b.center))


def rank(
    items: Mapping[str, Sample],
    *,
    descending: bool = False,
    rel: float = TIE_REL,
    judge_noise: bool = True,
) -> list[tuple[str, ...]]:
    """Names in order of their centre, grouped in tiers of ties; too-noisy ones left out.

    A name joins the current tier when it ties with the tier's first member (ties are not
    transitive; anchoring on the leader keeps a long chain of near-equals from merging the
    best and the worst). Equal centres are ordered by name, so the result is deterministic.
    A measurement too noisy to rank (`noisy`), a settled value still falling when the idle
    ended (`falling`), a single repeat among repeated values (`lone`) or a measurement made in
    saturation (`Sample.saturated`) is in no tier: the sentences name it apart.
    `judge_noise=False` keeps every name, for shares near zero, whose interval relative to the
    value says nothing (their ties still follow the intervals).
    """
    sign = -1.0 if descending else 1.0
    order = sorted(
        (
            n
            for n in items
            if not (judge_noise and too_noisy(items[n]))
            and items[n].placeable
            and n not in lone(items)
        ),
        key=lambda n: (sign * items[n].center, n),
    )
    tiers: list[list[str]] = []
    for name in order:
        if tiers and ties(items[tiers[-1][0]], items[name], rel):
            tiers[-1].append(name)
        else:
            tiers.append([name])
    return [tuple(t) for t in tiers]


def ranked(items: Mapping[str, Sample]) -> dict[str, Sample]:
    """The measurements a ranking places (`rank`'s tiers): what the extremes, their ratios
    and the article's "N times the leanest" may quote. A value too noisy, still falling or
    alone among repeated ones is named apart in the sentences, never divided by."""
    return {n: items[n] for tier in rank(items) for n in tier}


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

    It moved when the highest and the lowest differ by more than the band (rel times the
    lowest, and at least abs_ms, so timer granularity is not an allocator effect) and do not
    tie under the noise rule (their intervals, or the A/A floor).
    """
    if len(items) < 2:
        return None
    order = sorted(items, key=lambda n: (items[n].center, n))
    lo, hi = items[order[0]], items[order[-1]]
    band = max(rel * lo.center, abs_ms)
    return LatencyVerdict(
        moved=(hi.center - lo.center) > band and not ties(lo, hi),
        lowest=order[0],
        highest=order[-1],
        low_ms=lo.center,
        high_ms=hi.center,
        band_ms=band,
    )


def kendall_tau(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Kendall's tau between two orders of the same names (1: same order, -1: reversed);
    names in only one order are ignored; None with fewer than two shared names."""
    shared = [n for n in a if n in b]
    if len(shared) < 2:
        return None
    pos = {n: i for i, n in enumerate(n for n in b if n in shared)}
    concordant = discordant = 0
    for i, x in enumerate(shared):
        for y in shared[i + 1 :]:
            if pos[x] < pos[y]:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / (concordant + discordant)


def reversed_pairs(
    a: Sequence[tuple[str, ...]], b: Sequence[tuple[str, ...]]
) -> list[tuple[str, str]]:
    """Pairs placed in different tiers one way by ranking `a` and the other way by `b`:
    the contradictions of two rankings beyond the noise (a tie in either is no contradiction,
    nor is a name one of them did not rank). Each pair as `a` orders it."""
    tier_a = {n: i for i, t in enumerate(a) for n in t}
    tier_b = {n: i for i, t in enumerate(b) for n in t}
    names = [n for t in a for n in t if n in tier_b]
    out = []
    for i, x in enumerate(names):
        for y in names[i + 1 :]:
            da, db = tier_a[x] - tier_a[y], tier_b[x] - tier_b[y]
            if da * db < 0:
                out.append((x, y) if da < 0 else (y, x))
    return out
