"""Pure statistics of a run, including the degenerate cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.measure import runstats


def test_percentile_interpolates_between_ranks():
    assert runstats.percentile([1, 2, 3, 4], 50) == 2.5
    assert runstats.percentile([10], 99) == 10
    assert runstats.percentile([], 50) is None
    assert runstats.percentile([5, 5, 5], 99) == 5
    with pytest.raises(ValueError):
        runstats.percentile([1], 101)


@given(st.lists(st.floats(-1e9, 1e9), min_size=1), st.floats(0, 100))
def test_percentile_stays_within_the_data(values, q):
    p = runstats.percentile(values, q)
    assert min(values) - 1e-6 <= p <= max(values) + 1e-6


def test_spread_of_repeats():
    assert runstats.max_min_spread_pct([]) is None
    assert runstats.max_min_spread_pct([3.0]) == 0.0
    assert runstats.max_min_spread_pct([9, 10, 11]) == pytest.approx(20.0)
    assert runstats.max_min_spread_pct([0, 0]) == 0.0


def test_peak_is_the_highest_sample_within_the_window():
    t = [0, 1, 2, 3, 4]
    v = [5, 9, 7, 20, 1]
    assert runstats.peak(t, v, 1, 2) == 9
    assert runstats.peak(t, v, 10, 20) is None


def test_settled_is_the_median_of_the_last_window_of_idle():
    t = [0, 1, 2, 3, 4, 5]
    v = [100, 100, 50, 40, 45, 999]
    assert runstats.settled(t, v, idle_end=4, window_s=2) == 45
    assert runstats.settled(t, v, idle_end=4, window_s=0) == 45  # the sample at the end itself
    assert runstats.settled([], [], 4, 2) is None


def test_disturbance_names_every_reason_and_none_when_quiet():
    assert runstats.disturbance(send_late_p99_ms=0.5, foreign_cpu_pct=1.0) is None
    why = runstats.disturbance(
        send_late_p99_ms=9.0, foreign_cpu_pct=40.0, sample_late_max_s=0.8, sample_interval_s=1.0
    )
    assert "sent late" in why and "40%" in why and "800 ms late" in why
    assert runstats.disturbance(send_late_p99_ms=None, foreign_cpu_pct=None) is None
    late = runstats.disturbance(send_late_p99_ms=None, foreign_cpu_pct=None, start_late_s=0.4)
    assert "started 0.40 s late" in late


def _row(status: int, intended: float, done: float | None) -> dict:
    return {"status": status, "intended_s": intended, "done_s": done}


def test_failed_requests_are_charged_at_least_the_timeout():
    rows = [_row(200, 0.0, 0.002), _row(0, 1.0, 1.001), _row(503, 2.0, 2.004), _row(0, 3.0, None)]
    latencies, failed = runstats.charged_latencies_ms(rows, timeout_s=10)
    assert failed == 3
    assert latencies[0] == pytest.approx(2.0)
    assert latencies[1:] == [10_000, 10_000, 10_000]  # a fast 503 is no better than a timeout
    slow = runstats.charged_latencies_ms([_row(0, 0.0, 12.0)], timeout_s=10)[0]
    assert slow == [12_000]  # never less than what it really took
    assert runstats.charged_latencies_ms([], timeout_s=10) == ([], 0)


def test_a_stalling_allocator_never_shows_a_better_p99():
    quick = [_row(200, i, i + 0.002) for i in range(99)]
    stalled = quick[:98] + [_row(0, 98, None)]
    p99_quick = runstats.percentile(runstats.charged_latencies_ms(quick, 10)[0], 99)
    p99_stalled = runstats.percentile(runstats.charged_latencies_ms(stalled, 10)[0], 99)
    assert p99_stalled > p99_quick


def test_sampling_gap_names_an_empty_window_and_a_hole():
    assert runstats.sampling_gap([0, 1, 2, 3], 0, 3, 1.0, what="peak") is None
    assert "no memory sample in the settle window" in runstats.sampling_gap(
        [0, 1], 5, 8, 1.0, what="settle"
    )
    assert "hole" in runstats.sampling_gap([0, 1, 5, 6], 0, 6, 1.0, what="peak")
    assert runstats.sampling_gap([5.0], 5, 5, 1.0, what="settle") is None  # one sample, no width


def test_overhead_ratio_and_given_back_share():
    assert runstats.overhead_ratio(300, 100, 110, 10) == 2.0
    assert runstats.overhead_ratio(300, 100, 10, 10) is None  # no payload grown: no ratio
    assert runstats.overhead_ratio(None, 100, 110, 10) is None
    assert runstats.given_back_share(200, 150) == 0.25
    assert runstats.given_back_share(200, 210) == -0.05  # grew during idle: negative, not hidden
    assert runstats.given_back_share(0, 0) is None and runstats.given_back_share(None, 5) is None


# --- settling over the idle ------------------------------------------------------------------

MB = 1_000_000


def _idle(values_mb: list[float], *, start: float = 10.0, step: float = 0.5):
    times = [start + i * step for i in range(len(values_mb))]
    return times, [int(v * MB) for v in values_mb]


def test_a_flat_idle_settles_at_once_and_is_not_falling():
    times, values = _idle([400.0] * 20)
    fit = runstats.settling(times, values, 10.0, times[-1], 2.5)
    assert fit == runstats.Settling(400 * MB, 0.0, False)


def test_a_step_down_settles_where_it_lands():
    times, values = _idle([400.0] * 8 + [300.0] * 12)  # drops at sample 8, t = 14.0
    fit = runstats.settling(times, values, 10.0, times[-1], 2.5)
    assert fit.settled == 300 * MB
    assert fit.settle_time_s == pytest.approx(4.0)
    assert fit.still_falling is False


def test_memory_falling_through_the_settle_window_is_still_falling():
    times, values = _idle([400.0 - 5 * i for i in range(20)])  # 5 MB a sample to the end
    fit = runstats.settling(times, values, 10.0, times[-1], 2.5)
    assert fit.still_falling is True
    # never inside the band of the final value before the last samples
    assert fit.settle_time_s > 8.0


def test_a_fall_inside_the_band_is_noise_not_falling():
    # 0.02% a sample: 0.1% across the window, under the 1% band
    times, values = _idle([400.0 * (1 - 0.0002 * i) for i in range(20)])
    fit = runstats.settling(times, values, 10.0, times[-1], 2.5)
    assert fit.still_falling is False and fit.settle_time_s == 0.0


def test_memory_growing_in_idle_is_not_falling():
    times, values = _idle([300.0 + 5 * i for i in range(20)])
    assert runstats.settling(times, values, 10.0, times[-1], 2.5).still_falling is False


def test_a_window_of_two_samples_says_nothing_of_the_trend():
    times, values = _idle([400.0, 300.0])
    fit = runstats.settling(times, values, 10.0, times[-1], 0.6)
    assert fit.still_falling is None and fit.settled is not None


def test_no_sample_in_the_window_settles_nothing():
    assert runstats.settling([], [], 0.0, 10.0, 2.0) == runstats.Settling(None, None, None)


def test_the_band_has_a_floor_for_small_services():
    assert runstats.settle_band(10 * MB) == 1 << 20
    assert runstats.settle_band(1000 * MB) == pytest.approx(10 * MB)
