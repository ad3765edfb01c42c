"""Statistics of a run as small pure functions: peak, settled, percentiles, disturbance.

Each takes plain sequences and returns plain numbers (or None for no data), so the runner and
the report compute the same values the same way and tests can pin the degenerate cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "charged_latencies_ms",
    "disturbance",
    "disturbs_memory",
    "OTHER_WORK",
    "SENT_LATE",
    "TIMING_ONLY",
    "given_back_share",
    "overhead_ratio",
    "sampling_gap",
    "saturation",
    "SATURATED_FAILED_SHARE",
    "SATURATED_RATE_SHARE",
    "max_min_spread_pct",
    "mean",
    "median",
    "peak",
    "percentile",
    "settle_band",
    "settled",
    "settling",
    "Settling",
    "SETTLE_BAND_MIN_BYTES",
    "SETTLE_BAND_REL",
]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None when empty."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    if lo == hi:
        return float(ordered[lo])
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def median(values: Sequence[float]) -> float | None:
    return percentile(values, 50)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def max_min_spread_pct(values: Sequence[float]) -> float | None:
    """(max - min) / mean in percent: the study's spread of repeats. None when empty."""
    m = mean(values)
    if m is None:
        return None
    if m == 0:
        return 0.0
    return (max(values) - min(values)) / m * 100


def peak(times: Sequence[float], values: Sequence[int], start: float, end: float) -> int | None:
    """Highest value sampled within [start, end] (the load phase); None when none fell there."""
    inside = [v for t, v in zip(times, values, strict=True) if start <= t <= end]
    return max(inside) if inside else None


def settled(
    times: Sequence[float], values: Sequence[int], idle_end: float, window_s: float
) -> int | None:
    """Median of the samples in the last `window_s` seconds before `idle_end`; None when none."""
    inside = [v for t, v in zip(times, values, strict=True) if idle_end - window_s <= t <= idle_end]
    m = median(inside)
    return None if m is None else int(round(m))


#: Memory is "settled" once it stays within this fraction of its final value (or within
#: SETTLE_BAND_MIN_BYTES, whichever is larger): the band of the settle time, of "still falling"
#: and of the idle that ends once memory has settled. An idle service's anonymous memory moves
#: by far less than this between samples (every idle sample was the same to the byte under all
#: five allocators without probes; probes add transient buffers of a few hundred KB).
SETTLE_BAND_REL = 0.01
SETTLE_BAND_MIN_BYTES = 1 << 20


def settle_band(final_bytes: float) -> float:
    """The band around a final value inside which memory counts as settled, in bytes."""
    return max(SETTLE_BAND_REL * abs(final_bytes), float(SETTLE_BAND_MIN_BYTES))


@dataclass(frozen=True)
class Settling:
    """How one repeat's memory settled over its idle.

    `settled`: the median of the last settle window (as `settled`); `settle_time_s`: seconds
    from the start of idle until memory stayed within `settle_band` of that value for good
    (0: it was there from the first idle sample); `still_falling`: memory was still dropping
    beyond the band across the settle window when idle ended, so `settled` is not yet where
    the allocator would settle and must not be ranked as settled.
    """

    settled: int | None
    settle_time_s: float | None
    still_falling: bool | None


def settling(
    times: Sequence[float],
    values: Sequence[int],
    idle_start: float,
    idle_end: float,
    window_s: float,
) -> Settling:
    """The settled value, the time to settle and whether memory was still falling at the end.

    Still falling: the median of the first third of the settle window lies above the median
    of its last third by more than the band, i.e. across the window memory dropped by more
    than the noise. A rise (memory growing in idle) is not falling. With fewer than three
    samples in the window nothing can be said of the trend (None).
    """
    final = settled(times, values, idle_end, window_s)
    if final is None:
        return Settling(None, None, None)
    band = settle_band(final)
    idle = [(t, v) for t, v in zip(times, values, strict=True) if idle_start <= t <= idle_end]
    settle_at = idle_start
    for t, v in idle:
        if abs(v - final) > band:
            settle_at = None  # left the band: settles later, if at all
        elif settle_at is None:
            settle_at = t
    settle_time = (idle_end if settle_at is None else settle_at) - idle_start
    window = [v for t, v in idle if t >= idle_end - window_s]
    falling: bool | None = None
    if len(window) >= 3:
        third = max(1, len(window) // 3)
        first, last = median(window[:third]), median(window[-third:])
        falling = bool(first is not None and last is not None and first - last > band)
    return Settling(final, round(max(0.0, settle_time), 3), falling)


def charged_latencies_ms(
    rows: Sequence[dict[str, Any]], timeout_s: float
) -> tuple[list[float], int]:
    """Latency of every request row in ms, a failed one charged at least the timeout.

    Latency is done - intended (the scheduled send time). A request that failed (transport
    error, HTTP 4xx/5xx, timeout, overload, never answered) counts as the larger of its own
    time and the timeout, so an allocator that stalls can never show a better percentile by
    dropping its slowest requests. Returns (latencies, how many failed).
    """
    out: list[float] = []
    failed = 0
    for row in rows:
        status, done = row.get("status") or 0, row.get("done_s")
        took = None if done is None else (done - row["intended_s"]) * 1000
        if 200 <= status < 400 and took is not None:
            out.append(took)
        else:
            failed += 1
            out.append(max(timeout_s * 1000, took or 0.0))
    return out, failed


def sampling_gap(
    times: Sequence[float], start: float, end: float, interval_s: float, *, what: str
) -> str | None:
    """Why the samples of [start, end] cannot be trusted, or None.

    A window with no sample, or with a hole longer than two intervals (a read that failed or
    a sampler that stalled), may have missed the peak or mis-placed the settled median.
    """
    inside = sorted(t for t in times if start <= t <= end)
    if not inside:
        return f"no memory sample in the {what} window"
    edges = [start, *inside, end]
    widest = max(b - a for a, b in zip(edges, edges[1:], strict=False))
    if widest > 2 * interval_s + 1e-9:
        return f"a {widest:.1f} s hole in the memory samples of the {what} window"
    return None


def overhead_ratio(
    anon: int | None, ready_anon: int | None, live: int | None, ready_live: int | None
) -> float | None:
    """Anonymous memory gained since the service was ready per byte of live payload gained.

    1.0 means the allocator costs nothing beyond what the program holds; 1.5 means half as
    much again. None when a value is missing or the live payload did not grow.
    """
    if None in (anon, ready_anon, live, ready_live):
        return None
    grown = live - ready_live  # type: ignore[operator]
    if grown <= 0:
        return None
    return (anon - ready_anon) / grown  # type: ignore[operator]


def given_back_share(peak_bytes: int | None, settled_bytes: int | None) -> float | None:
    """Share of the peak the service gave back by the end of idle: (peak - settled) / peak."""
    if peak_bytes is None or settled_bytes is None or peak_bytes <= 0:
        return None
    return (peak_bytes - settled_bytes) / peak_bytes


#: A repeat is saturated when the service answered fewer than this share of the asked rate
#: within the request timeout, or failed more than SATURATED_FAILED_SHARE of its load: the
#: app could not keep up, and its memory was measured with a queue, not a load.
SATURATED_RATE_SHARE = 0.9
SATURATED_FAILED_SHARE = 0.05


def saturation(achieved_rps: float, asked_rps: float, failed: int, requests: int) -> str | None:
    """Why a repeat's service could not keep up with its open-loop load, or None.

    `achieved_rps`: requests answered (any status) per second of load; `failed`: those never
    answered (timed out, refused, cut off)."""
    if asked_rps <= 0 or requests <= 0:
        return None
    low = achieved_rps < SATURATED_RATE_SHARE * asked_rps
    failing = failed > SATURATED_FAILED_SHARE * requests
    if not (low or failing):
        return None
    return (
        f"saturated: the app served {achieved_rps:.0f} of {asked_rps:g} requests a second "
        f"({failed} of {requests} load requests went unanswered)"
    )


#: A run is flagged disturbed above these (hyperfine-style: warn, say how to get a cleaner one).
MAX_SEND_LATE_P99_MS = 2.0
MAX_FOREIGN_CPU_PCT = 5.0
MAX_SAMPLE_LATE_S_FRACTION = 0.5
MAX_START_LATE_S = 0.05


#: Disturbances of the load's timing alone: the generator sent late, or other work took
#: CPU. They bear on latency and throughput; memory, sampled on its own schedule and settled
#: over an idle, is not moved by them beyond the repeats' own spread (in the quick runs of
#: 12-06, six such repeats sat a median 2% from their clean mean; clean repeats sit 1.1-1.6%
#: apart at the median and 2.4-3.8% at the 90th percentile: docs/guide/data-format.md).
SENT_LATE = "load generator sent late"
OTHER_WORK = "other work used"
TIMING_ONLY = (SENT_LATE, OTHER_WORK)


def disturbs_memory(reason: str | None) -> bool:
    """Whether a disturbed repeat's reason bears on its memory figures: any reason but the
    timing-only ones (a late memory sample, a generator that started its phases late, a
    reason this version does not know, or none given)."""
    parts = [p.strip() for p in (reason or "").split("; ") if p.strip()]
    return not parts or any(not p.startswith(TIMING_ONLY) for p in parts)


def disturbance(
    *,
    send_late_p99_ms: float | None,
    foreign_cpu_pct: float | None,
    sample_late_max_s: float | None = None,
    sample_interval_s: float | None = None,
    start_late_s: float | None = None,
) -> str | None:
    """Why a run cannot be trusted to be quiet, or None when nothing says it was disturbed."""
    reasons = []
    if send_late_p99_ms is not None and send_late_p99_ms > MAX_SEND_LATE_P99_MS:
        reasons.append(f"{SENT_LATE} (p99 {send_late_p99_ms:.1f} ms > {MAX_SEND_LATE_P99_MS:g} ms)")
    if foreign_cpu_pct is not None and foreign_cpu_pct > MAX_FOREIGN_CPU_PCT:
        reasons.append(
            f"{OTHER_WORK} {foreign_cpu_pct:.0f}% of the machine's CPU "
            f"(> {MAX_FOREIGN_CPU_PCT:g}%): run it on a quiet machine"
        )
    if (
        sample_late_max_s is not None
        and sample_interval_s
        and sample_late_max_s > MAX_SAMPLE_LATE_S_FRACTION * sample_interval_s
    ):
        reasons.append(f"a memory sample was {sample_late_max_s * 1000:.0f} ms late")
    if start_late_s is not None and start_late_s > MAX_START_LATE_S:
        reasons.append(
            f"the load generator started {start_late_s:.2f} s late, so its phases "
            "began after the runner's"
        )
    return "; ".join(reasons) if reasons else None
