"""The open-loop plan: when every request is due and which endpoint it calls. Pure, no clocks.

An open-loop generator decides *when* every request is due before it sends any of them, so
the service's slowness can never slow the offered load down (no coordinated omission). This
module holds that plan (stages run back to back, request i of a stage due at its start plus
i/rate, or at seeded exponential gaps for Poisson arrivals; a stage that ramps changes its rate
linearly over its first `ramp_s` seconds) and the endpoint chosen for every slot; how well a
run kept it is bench.load.record.
The load generator (bench.load.generator) is the only part with clocks and sockets.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate

__all__ = [
    "ARRIVALS",
    "Stage",
    "endpoint_weights",
    "iter_endpoints",
    "iter_slots",
    "planned_requests",
    "rate_at",
    "slot_count",
    "stage_starts",
    "total_slots",
]


@dataclass(frozen=True)
class Stage:
    """A stretch of constant open-loop rate: `phase` is the label every request row carries.

    `mix` replaces the run's endpoint mix for this stage only (the idle stage sends health
    probes, not the load's mix); None keeps the run's mix.
    """

    phase: str
    rate: float
    duration_s: float
    mix: Mapping[str, float] | None = None
    #: "uniform": request i due at i / rate; "poisson": exponential gaps of mean 1 / rate,
    #: seeded (`iter_slots`), so the same schedule on every allocator and run
    arrivals: str = "uniform"
    #: seconds over which the rate changes linearly from `ramp_from` to `rate` at the stage's
    #: start (0: the stage runs at `rate` throughout)
    ramp_s: float = 0.0
    ramp_from: float = 0.0

    def __post_init__(self) -> None:
        if self.arrivals not in ARRIVALS:
            raise ValueError(f"stage {self.phase!r}: arrivals must be one of {', '.join(ARRIVALS)}")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"stage {self.phase!r}: rate must be a finite number above 0")
        if not (self.duration_s >= 0 and math.isfinite(self.duration_s)):
            raise ValueError(f"stage {self.phase!r}: duration_s must be a finite number >= 0")
        if not (0 <= self.ramp_s <= self.duration_s):
            raise ValueError(f"stage {self.phase!r}: ramp_s must be between 0 and duration_s")
        if not (self.ramp_from >= 0 and math.isfinite(self.ramp_from)):
            raise ValueError(f"stage {self.phase!r}: ramp_from must be a finite number >= 0")


#: How a stage's requests arrive (Stage.arrivals).
ARRIVALS = ("uniform", "poisson")


def rate_at(stage: Stage, offset_s: float) -> float:
    """The rate the plan offers `offset_s` seconds into the stage, requests/s."""
    if stage.ramp_s > 0 and offset_s < stage.ramp_s:
        return stage.ramp_from + (stage.rate - stage.ramp_from) * max(0.0, offset_s) / stage.ramp_s
    return stage.rate


def _due_by(stage: Stage, offset_s: float) -> float:
    """Requests the plan makes due in the stage's first `offset_s` seconds: the integral of
    `rate_at`, a parabola over the ramp and a line after it."""
    r0, r1, ramp = stage.ramp_from, stage.rate, stage.ramp_s
    if ramp <= 0:
        return r1 * offset_s
    u = min(offset_s, ramp)
    ramped = r0 * u + (r1 - r0) * u * u / (2 * ramp)
    return ramped + r1 * max(0.0, offset_s - ramp)


def _offset_of(stage: Stage, n: float) -> float:
    """When, seconds into the stage, the plan has made `n` requests due: `_due_by` inverted."""
    r0, r1, ramp = stage.ramp_from, stage.rate, stage.ramp_s
    if ramp <= 0:
        return n / r1
    in_ramp = _due_by(stage, ramp)
    if n > in_ramp:
        return ramp + (n - in_ramp) / r1
    # a u^2 + r0 u = n, a = (r1 - r0) / (2 ramp), solved in the form that holds for a <= 0
    # and r0 = 0 alike; the parabola rises over the ramp (its slope ends at r1 > 0)
    a = (r1 - r0) / (2 * ramp)
    root = math.sqrt(max(0.0, r0 * r0 + 4 * a * n))
    return 0.0 if n <= 0 else 2 * n / (r0 + root)


def planned_requests(stage: Stage) -> float:
    """Requests the stage makes due, as a real number (its mean rate times its length)."""
    return _due_by(stage, stage.duration_s)


def slot_count(stage: Stage) -> int:
    """How many requests a uniform stage schedules: every i >= 0 due before the stage's end
    (a Poisson stage schedules about as many, a number its seed decides).

    The count is rounded to 6 decimals first so that float noise (3 s x 100/s computing as
    300.00000000000006) does not add a request that would be due exactly at the stage's end.
    """
    return math.ceil(round(planned_requests(stage), 6))


def total_slots(stages: Sequence[Stage]) -> int:
    """Requests the whole plan schedules."""
    return sum(slot_count(s) for s in stages)


def stage_starts(stages: Sequence[Stage]) -> list[float]:
    """Offset of each stage from t0, seconds: stages run back to back on one schedule."""
    return [0.0, *accumulate(s.duration_s for s in stages)][: len(stages)]


def iter_slots(stages: Sequence[Stage], seed: int = 0) -> Iterator[tuple[int, float]]:
    """(stage index, offset from t0 in s) of every request, in time order, lazily.

    Uniform arrivals: each offset is computed from the stage start as start + i / rate,
    never by adding the interval up, so a long run does not drift. Poisson arrivals: gaps
    drawn from an exponential of mean 1 / rate by a generator seeded with `seed` and the
    stage's index, so the schedule is random in its gaps yet the same on every allocator and
    every run of the same seed (a Poisson process is what many independent clients make).
    Lazily either way, so a high rate over a long stage costs no memory up front.
    A ramp maps request counts to times through the rate's integral: the i-th request is due
    when the integral reaches i (uniform), or when it reaches the running sum of unit
    exponential gaps (Poisson: the standard construction of a Poisson process whose rate
    changes over time).
    """
    for index, (stage, start) in enumerate(zip(stages, stage_starts(stages), strict=True)):
        rate = stage.rate
        if stage.ramp_s > 0:
            yield from _ramp_slots(stage, index, start, seed)
            continue
        if stage.arrivals == "poisson":
            gap = random.Random(f"arrivals:{seed}:{index}").expovariate
            t = gap(rate)
            while t < stage.duration_s:
                yield index, start + t
                t += gap(rate)
            continue
        for i in range(slot_count(stage)):
            yield index, start + i / rate


def _ramp_slots(stage: Stage, index: int, start: float, seed: int) -> Iterator[tuple[int, float]]:
    """The slots of a stage that ramps (see `iter_slots`)."""
    if stage.arrivals == "poisson":
        gap = random.Random(f"arrivals:{seed}:{index}").expovariate
        total, n = planned_requests(stage), gap(1.0)
        while n < total:
            yield index, start + min(_offset_of(stage, n), stage.duration_s)
            n += gap(1.0)
        return
    for i in range(slot_count(stage)):
        yield index, start + min(_offset_of(stage, i), stage.duration_s)


def endpoint_weights(mix: Mapping[str, float]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Endpoints with a weight above 0, sorted by name, and their cumulative weights.

    Sorting makes the sequence for a seed independent of the order the mix was written in.
    """
    names = tuple(sorted(name for name, weight in mix.items() if weight > 0))
    if not names:
        raise ValueError("the mix needs at least one endpoint with a weight above 0")
    if any(not math.isfinite(mix[name]) for name in names):
        raise ValueError("mix weights must be finite")
    return names, tuple(accumulate(float(mix[name]) for name in names))


def iter_endpoints(mix: Mapping[str, float], seed: int) -> Iterator[str]:
    """An endless, seeded sequence of endpoints drawn independently with the mix's weights.

    Independent draws (a seeded random.Random, one draw per request) rather than a weighted
    round-robin: a round-robin repeats a short fixed pattern, which can line up with the
    service's worker processes or connection reuse and send one kind of request to one worker.
    The proportions hold over a run (hundreds of thousands of draws) and the sequence is the
    same for the same seed and mix, on every run and every allocator.
    """
    names, cumulative = endpoint_weights(mix)
    total, last = cumulative[-1], len(names) - 1
    draw = random.Random(seed).random
    while True:
        yield names[bisect_right(cumulative, draw() * total, 0, last)]
