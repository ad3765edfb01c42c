"""bench.load.schedule and bench.load.record: the open-loop plan, the endpoint sequence and the
statistics, all pure."""

from __future__ import annotations

import math
from collections import Counter
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.load.record import LatencyHistogram, spread
from bench.load.schedule import (
    Stage,
    endpoint_weights,
    iter_endpoints,
    iter_slots,
    planned_requests,
    rate_at,
    slot_count,
    stage_starts,
    total_slots,
)
from bench.measure.runstats import percentile

rates = st.floats(min_value=0.1, max_value=5000, allow_nan=False)
durations = st.floats(min_value=0, max_value=60, allow_nan=False)


# -- the schedule ---------------------------------------------------------------------------


def test_a_stage_schedules_rate_times_duration_requests() -> None:
    assert slot_count(Stage("load", 100, 3)) == 300
    assert slot_count(Stage("load", 200, 600)) == 120_000
    assert slot_count(Stage("load", 0.5, 3)) == 2  # due at 0 s and 2 s
    assert slot_count(Stage("load", 3, 1)) == 3
    assert slot_count(Stage("idle", 10, 0)) == 0


@given(rate=rates, duration=durations)
def test_slot_count_is_every_i_with_i_over_rate_before_the_end(
    rate: float, duration: float
) -> None:
    n = slot_count(Stage("load", rate, duration))
    assert n >= 0
    if n:
        assert (n - 1) / rate < duration + 1e-6  # the last one is inside the stage
    assert n / rate >= duration - 1e-6  # and the next one would not be


def test_request_i_is_due_at_the_stage_start_plus_i_over_rate() -> None:
    stages = [Stage("warmup", 20, 1), Stage("load", 200, 0.5)]
    slots = list(iter_slots(stages))
    assert len(slots) == total_slots(stages) == 20 + 100
    assert [o for s, o in slots if s == 0] == [i / 20 for i in range(20)]
    assert [o for s, o in slots if s == 1] == [1 + i / 200 for i in range(100)]


@given(st.lists(st.tuples(rates, st.floats(0, 5)), min_size=1, max_size=4))
def test_stages_run_back_to_back_in_time_order(spec: list[tuple[float, float]]) -> None:
    stages = [Stage(f"s{k}", min(r, 500), d) for k, (r, d) in enumerate(spec)]
    starts = stage_starts(stages)
    assert starts[0] == 0
    offsets = []
    for index, offset in iter_slots(stages):
        stage = stages[index]
        assert starts[index] <= offset < starts[index] + stage.duration_s + 1e-9
        offsets.append(offset)
    assert offsets == sorted(offsets)


def test_a_long_schedule_does_not_drift() -> None:
    *_, (_, last) = iter_slots([Stage("load", 200, 600)])
    assert last == 119_999 / 200  # computed, never accumulated


@pytest.mark.parametrize("rate, duration", [(0, 1), (-1, 1), (math.inf, 1), (1, -1), (1, math.nan)])
def test_a_stage_needs_a_positive_rate_and_a_duration(rate: float, duration: float) -> None:
    with pytest.raises(ValueError, match="stage 'x'"):
        Stage("x", rate, duration)


# -- the endpoint sequence ------------------------------------------------------------------


@given(seed=st.integers(0, 2**32))
def test_the_sequence_is_the_same_for_a_seed_whatever_the_order_of_the_mix(seed: int) -> None:
    a = list(islice(iter_endpoints({"churn": 2, "json": 1, "xml": 1}, seed), 200))
    b = list(islice(iter_endpoints({"xml": 1, "json": 1, "churn": 2}, seed), 200))
    assert a == b


def test_different_seeds_give_different_sequences() -> None:
    mix = {"churn": 2, "json": 1, "xml": 1}
    assert list(islice(iter_endpoints(mix, 1), 100)) != list(islice(iter_endpoints(mix, 2), 100))


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_the_sequence_keeps_the_mix_proportions(seed: int) -> None:
    n = 40_000
    counts = Counter(islice(iter_endpoints({"churn": 2, "json": 1, "xml": 1}, seed), n))
    # binomial standard deviation at p=0.5 is 0.0025 of n: allow 5 of them
    assert counts["churn"] / n == pytest.approx(0.5, abs=0.0125)
    assert counts["json"] / n == pytest.approx(0.25, abs=0.0125)
    assert counts["xml"] / n == pytest.approx(0.25, abs=0.0125)


@given(
    weights=st.dictionaries(
        st.sampled_from(["churn", "json", "xml", "health"]), st.floats(0, 10), min_size=1
    ),
    seed=st.integers(0, 1000),
)
def test_only_endpoints_with_weight_are_drawn(weights: dict[str, float], seed: int) -> None:
    if sum(weights.values()) <= 0 or all(w == 0 for w in weights.values()):
        with pytest.raises(ValueError, match="weight above 0"):
            next(iter_endpoints(weights, seed))
        return
    drawn = set(islice(iter_endpoints(weights, seed), 300))
    assert drawn <= {name for name, w in weights.items() if w > 0}


def test_one_endpoint_is_all_there_is() -> None:
    assert set(islice(iter_endpoints({"json": 1, "xml": 0}, 3), 50)) == {"json"}


def test_endpoint_weights_are_sorted_and_cumulative() -> None:
    assert endpoint_weights({"xml": 1, "churn": 2, "json": 0}) == (("churn", "xml"), (2.0, 3.0))


# -- statistics -----------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 99) == pytest.approx(3.97)
    assert percentile([1, 2, 3, 4], 0) == 1
    assert percentile([1, 2, 3, 4], 100) == 4


def test_percentile_of_nothing_is_none_and_of_one_sample_is_that_sample() -> None:
    assert percentile([], 50) is None
    assert all(percentile([0.25], q) == 0.25 for q in (0, 1, 50, 99, 100))
    assert all(percentile([3.0] * 7, q) == 3.0 for q in (0, 50, 99, 100))


def test_percentile_refuses_q_outside_0_to_100() -> None:
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.floats(0, 100), st.floats(0, 100)
)
def test_percentile_is_monotone_and_within_the_sample(
    values: list[float], q1: float, q2: float
) -> None:
    lo, hi = sorted((q1, q2))
    p_lo, p_hi = percentile(values, lo), percentile(values, hi)
    assert p_lo is not None and p_hi is not None
    assert min(values) - 1e-6 <= p_lo <= p_hi + 1e-6 <= max(values) + 2e-6


def test_spread_of_degenerate_samples() -> None:
    empty = spread([])
    assert (empty.n, empty.p50, empty.p99, empty.max) == (0, None, None, None)
    one = spread([0.002])
    assert (one.n, one.p50, one.p99, one.max) == (1, 0.002, 0.002, 0.002)
    same = spread([1.0] * 10).scaled(1000)
    assert (same.p50, same.p99, same.max) == (1000.0, 1000.0, 1000.0)
    assert spread([]).scaled(1000).p99 is None


def test_histogram_of_nothing_has_no_quantile() -> None:
    assert LatencyHistogram().quantile(0.99) is None


@given(st.lists(st.floats(1e-5, 100), min_size=1, max_size=300), st.floats(0.01, 1))
def test_histogram_quantile_bounds_the_exact_one_within_its_bucket(
    values: list[float], q: float
) -> None:
    hist = LatencyHistogram()
    for v in values:
        hist.add(v)
    ordered = sorted(values)
    exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]  # nearest rank
    approx = hist.quantile(q)
    assert approx is not None
    assert exact * (1 - 1e-9) <= approx <= exact * 10 ** (1 / hist.per_decade) * (1 + 1e-9)


def test_histogram_clamps_values_outside_its_range() -> None:
    hist = LatencyHistogram(low=1e-3, high=1.0)
    hist.add(0.0)
    hist.add(1e6)
    assert hist.quantile(0) == pytest.approx(1e-3)
    assert hist.quantile(1) == pytest.approx(hist.upper_bound(hist.size - 1))
    assert hist.n == 2


def test_poisson_arrivals_have_exponential_gaps_of_the_stage_rate():
    import statistics

    stage = Stage("load", 200.0, 300.0, arrivals="poisson")
    offsets = [t for _, t in iter_slots([stage], seed=3)]
    gaps = [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    # about rate x duration requests (sd of a Poisson count: sqrt(60,000) ~ 245)
    assert abs(len(offsets) - 60_000) < 5 * 245
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1 / 200, rel=0.02)
    # an exponential's standard deviation equals its mean (coefficient of variation 1);
    # uniform arrivals have none
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.03)
    assert all(0 <= t < 300.0 for t in offsets) and offsets == sorted(offsets)


def test_poisson_arrivals_are_the_same_for_the_same_seed_and_differ_for_another():
    stages = [Stage("warmup", 20.0, 2.0), Stage("load", 100.0, 5.0, arrivals="poisson")]
    a = list(iter_slots(stages, seed=1))
    assert a == list(iter_slots(stages, seed=1))
    assert a != list(iter_slots(stages, seed=2))
    # the warm-up stays evenly spaced: only the load's arrivals are Poisson
    assert [t for i, t in a if i == 0] == [i / 20.0 for i in range(40)]
    with pytest.raises(ValueError, match="arrivals must be one of uniform, poisson"):
        Stage("load", 1.0, 1.0, arrivals="bursty")


def test_a_ramp_offers_the_integral_of_its_linear_rate():
    stage = Stage("load", 400.0, 10.0, ramp_s=4.0, ramp_from=100.0)
    offsets = [t for _, t in iter_slots([stage])]
    # 4 s from 100 to 400 (mean 250: 1,000 requests), then 6 s at 400 (2,400)
    assert len(offsets) == slot_count(stage) == 3400 == planned_requests(stage)
    assert offsets == sorted(offsets) and 0 <= offsets[0] and offsets[-1] < 10.0
    per_second = [sum(1 for t in offsets if s <= t < s + 1) for s in range(10)]
    # the first second offers 100 + 75 t integrated: 137.5; the fourth, 325 + 37.5 = 362.5
    assert per_second[0] in (137, 138, 139) and per_second[3] in (362, 363, 364)
    assert per_second[4:] == [400] * 6
    assert rate_at(stage, 0.0) == 100.0 and rate_at(stage, 2.0) == 250.0
    assert rate_at(stage, 4.0) == rate_at(stage, 9.0) == 400.0


def test_a_ramp_down_and_a_ramp_from_nothing_keep_the_schedule_in_order():
    down = Stage("load", 50.0, 10.0, ramp_s=10.0, ramp_from=450.0)
    offsets = [t for _, t in iter_slots([down])]
    assert len(offsets) == 2500 and offsets == sorted(offsets)
    assert sum(1 for t in offsets if t < 1) == 430  # 450 - 20 t integrated over [0, 1)
    up = Stage("load", 100.0, 2.0, ramp_s=2.0, ramp_from=0.0)
    offsets = [t for _, t in iter_slots([up])]
    assert len(offsets) == 100 and offsets[1] == pytest.approx(math.sqrt(1 / 25))
    with pytest.raises(ValueError, match="ramp_s must be between 0 and duration_s"):
        Stage("load", 1.0, 1.0, ramp_s=2.0)


def test_poisson_arrivals_on_a_ramp_follow_its_rate():
    import statistics

    stage = Stage("load", 400.0, 400.0, arrivals="poisson", ramp_s=400.0, ramp_from=0.0)
    offsets = [t for _, t in iter_slots([stage], seed=5)]
    # the mean rate is 200: about 80,000 requests (sd ~283)
    assert abs(len(offsets) - 80_000) < 5 * 283
    # the rate at t is t: a 20 s window around t holds about 20 t requests
    for t in (50.0, 200.0, 350.0):
        n = sum(1 for x in offsets if t - 10 <= x < t + 10)
        assert abs(n - 20 * t) < 5 * math.sqrt(20 * t)
    # within a short window the gaps are still exponential (coefficient of variation 1)
    window = [x for x in offsets if 300 <= x < 310]
    gaps = [b - a for a, b in zip(window, window[1:], strict=False)]
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, abs=0.1)
