"""Statistics and judgements: the degenerate cases first, then the decisions."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.report.stats import (
    Sample,
    classify_fingerprint,
    extremes_ratio,
    latency_verdict,
    noisy,
    rank,
    ranked,
    relative_difference,
    shed_fraction,
    summarize,
    t_interval,
    t_quantile,
    ties,
    too_noisy,
)


def one(x: float) -> Sample:
    return Sample((x,), x, 0.0)


def test_summarize_of_nothing_is_none():
    assert summarize([]) is None
    assert summarize([None, float("nan")]) is None


def test_summarize_one_sample_has_no_spread():
    s = summarize([5.0])
    assert s is not None and s.center == 5.0 and s.spread == 0.0 and s.n == 1


def test_summarize_all_equal():
    s = summarize([3.0, 3.0, 3.0])
    assert s is not None and s.center == 3.0 and s.spread == 0.0


def test_summarize_centres_on_the_mean_its_interval_is_built_around():
    s = summarize([1.0, 2.0, 9.0])
    assert s.center == 4.0 and s.spread == 8.0
    assert summarize([1.0, 2.0, 9.0], "median").center == 2.0


def test_t_quantiles_match_the_tables():
    assert t_quantile(1) == 12.706 and t_quantile(2) == 4.303 and t_quantile(30) == 2.042
    assert t_quantile(60) == pytest.approx(2.000, abs=0.002)
    assert t_quantile(1000) == pytest.approx(1.962, abs=0.002)
    with pytest.raises(ValueError):
        t_quantile(0)


def test_interval_of_three_repeats_by_hand():
    # mean 100, sample sd 10, n 3: half-width 4.303 * 10 / sqrt(3) = 24.84
    lo, hi = t_interval([90.0, 100.0, 110.0])
    assert lo == pytest.approx(75.156, abs=1e-3) and hi == pytest.approx(124.844, abs=1e-3)
    s = summarize([90.0, 100.0, 110.0])
    assert s.interval == (lo, hi) and s.half_width_rel == pytest.approx(0.24844, abs=1e-5)


def test_one_repeat_has_no_interval_and_all_equal_a_zero_width_one():
    assert t_interval([5.0]) is None and summarize([5.0]).half_width_rel is None
    assert summarize([3.0, 3.0, 3.0]).interval == (3.0, 3.0)
    assert summarize([0.0, 0.0]).half_width_rel == 0.0


def test_single_runs_tie_within_the_stated_threshold():
    assert ties(one(100.0), one(104.0))
    assert not ties(one(100.0), one(106.0))


def test_single_runs_tie_within_the_aa_floor_when_the_run_had_a_pair():
    a, b = replace(one(100.0), floor_rel=0.01), replace(one(102.0), floor_rel=0.01)
    assert not ties(a, b)  # 2% apart, the A/A pair drifted 1%
    near = replace(one(100.0), floor_rel=0.0003)  # a pair that landed close by chance
    assert ties(near, replace(one(100.9), floor_rel=0.0003))  # the floor is at least 1%
    assert not ties(near, replace(one(101.5), floor_rel=0.0003))
    wide = replace(one(100.0), floor_rel=0.08)
    assert ties(wide, replace(one(107.0), floor_rel=0.08))


def test_repeats_tie_when_their_intervals_overlap():
    a = summarize([100.0, 101.0, 102.0])  # 101 +/- 2.48
    b = summarize([103.0, 104.0, 105.0])  # 104 +/- 2.48
    assert ties(a, b)
    c = summarize([110.0, 111.0, 112.0])
    assert not ties(a, c)  # 10% apart would tie under no rule but 5%; the intervals separate
    assert not ties(summarize([100.0, 100.0]), summarize([101.0, 101.0]))


def test_a_single_value_ties_a_repeated_one_inside_its_interval():
    a = summarize([90.0, 100.0, 110.0])  # 75.2 .. 124.8
    assert ties(a, one(120.0)) and ties(one(120.0), a)
    assert not ties(a, one(200.0))


def test_equal_values_always_tie_even_without_noise():
    a = summarize([5.0, 5.0])
    assert ties(a, a)


def test_too_noisy_is_an_interval_wider_than_the_stated_share():
    # the case: three repeats from 4.12 to 5.75 around 4.86
    shaky = summarize([4.12, 4.71, 5.75])
    assert too_noisy(shaky) and shaky.half_width_rel > 0.2
    assert not too_noisy(summarize([6.0, 6.07, 6.14])) and not too_noisy(one(1.0))


def test_rank_leaves_the_too_noisy_out_and_noisy_names_them():
    items = {
        "tcmalloc": summarize([6.0, 6.07, 6.14]),
        "mimalloc-v3": summarize([4.12, 4.71, 5.75]),
        "glibc": summarize([3.0, 3.05, 3.1]),
    }
    assert rank(items, descending=True) == [("tcmalloc",), ("glibc",)]
    assert noisy(items) == ["mimalloc-v3"]
    assert rank({"x": summarize([1.0, 5.0, 9.0])}) == []


def test_ranked_keeps_only_what_a_ranking_places_so_no_ratio_divides_by_a_noisy_value():
    items = {
        "tcmalloc": summarize([6.0, 6.07, 6.14]),
        "jemalloc": summarize([2.0, 3.4, 4.6]),  # the lowest, and too noisy to rank
        "glibc": summarize([3.0, 3.05, 3.1]),
        "mimalloc-v2": summarize([2.5]),  # alone among repeated values
    }
    assert set(ranked(items)) == {"tcmalloc", "glibc"}
    assert extremes_ratio(ranked(items)) == pytest.approx(6.07 / 3.05)


def test_relative_difference_degenerate():
    assert relative_difference(0.0, 0.0) == 0.0
    assert relative_difference(100.0, 99.0) == pytest.approx(0.01)
    assert relative_difference(-2.0, 2.0) == 2.0


@given(st.lists(st.floats(1, 1e9, allow_nan=False), min_size=2, max_size=12))
def test_interval_contains_the_mean_and_narrows_with_agreement(xs):
    lo, hi = t_interval(xs)
    mean = statistics.fmean(xs)
    assert lo <= mean + 1e-6 * abs(mean) and mean - 1e-6 * abs(mean) <= hi
    assert math.isclose(hi - mean, mean - lo, rel_tol=1e-9, abs_tol=1e-6)


def test_rank_orders_and_groups_ties():
    items = {"a": one(100.0), "b": one(103.0), "c": one(200.0)}
    assert rank(items) == [("a", "b"), ("c",)]
    assert rank(items, descending=True) == [("c",), ("b", "a")]


def test_rank_anchors_tiers_on_their_leader():
    # a ties b and b ties c, but a does not tie c: the chain must not merge them all
    items = {"a": one(100.0), "b": one(104.0), "c": one(108.5)}
    assert rank(items) == [("a", "b"), ("c",)]


def test_rank_of_nothing_and_of_one():
    assert rank({}) == []
    assert rank({"x": one(1.0)}) == [("x",)]


def test_rank_breaks_exact_ties_by_name():
    assert rank({"z": one(1.0), "a": one(1.0)}) == [("a", "z")]


@given(
    st.dictionaries(
        st.text("abcdef", min_size=1, max_size=3),
        st.floats(1, 1e9, allow_nan=False),
        min_size=1,
        max_size=8,
    )
)
def test_rank_keeps_every_name_once(values):
    tiers = rank({k: one(v) for k, v in values.items()})
    flat = [n for t in tiers for n in t]
    assert sorted(flat) == sorted(values)


def test_fingerprint_classes_follow_the_shed_fraction():
    assert classify_fingerprint(100.0, 95.0) == "keeps"
    assert classify_fingerprint(100.0, 70.0) == "returns some"
    assert classify_fingerprint(100.0, 50.0) == "returns most"


def test_fingerprint_degenerate_peaks():
    assert shed_fraction(0.0, 0.0) == 0.0
    assert shed_fraction(100.0, 120.0) == 0.0  # settled above peak gives nothing back
    assert classify_fingerprint(0.0, 10.0) == "keeps"


def test_latency_needs_two_allocators():
    assert latency_verdict({}) is None
    assert latency_verdict({"a": one(3.0)}) is None


def test_latency_barely_moved_within_band():
    v = latency_verdict({"a": one(4.0), "b": one(4.5)})
    assert v is not None and not v.moved and v.lowest == "a" and v.highest == "b"


def test_latency_floor_of_one_millisecond():
    v = latency_verdict({"a": one(1.0), "b": one(1.9)})  # 90% apart but under 1 ms
    assert v is not None and not v.moved and v.band_ms == 1.0


def test_latency_moved_beyond_band():
    v = latency_verdict({"a": one(10.0), "b": one(25.0)})
    assert v is not None and v.moved and v.ratio == 2.5


def test_latency_gap_inside_the_intervals_did_not_move():
    v = latency_verdict({"a": summarize([10.0, 10.0, 30.0]), "b": summarize([25.0, 25.0])})
    assert v is not None and not v.moved and v.band_ms == pytest.approx(50 / 3 * 0.2)


def test_latency_moved_when_intervals_separate():
    v = latency_verdict({"a": summarize([10.0, 10.2, 10.1]), "b": summarize([20.0, 20.3])})
    assert v is not None and v.moved


def test_extremes_ratio_degenerate():
    assert extremes_ratio({}) is None
    assert extremes_ratio({"a": one(0.0), "b": one(1.0)}) is None
    assert extremes_ratio({"a": one(2.0), "b": one(5.0)}) == 2.5


def test_kendall_tau_of_equal_reversed_and_partial_orders():
    from bench.report.stats import kendall_tau

    assert kendall_tau(["a", "b", "c"], ["a", "b", "c"]) == 1.0
    assert kendall_tau(["a", "b", "c"], ["c", "b", "a"]) == -1.0
    assert kendall_tau(["a", "b", "c", "d"], ["b", "a", "c", "d"]) == pytest.approx(4 / 6)
    assert kendall_tau(["a", "x"], ["a", "y"]) is None  # one shared name


def test_reversed_pairs_ignore_ties_and_unranked_names():
    from bench.report.stats import reversed_pairs

    a = [("glibc",), ("jemalloc",), ("tcmalloc", "mimalloc")]
    b = [("jemalloc",), ("glibc", "tcmalloc"), ("mimalloc",), ("bun",)]
    # glibc before jemalloc in a, after it in b; glibc/tcmalloc tie in b: no contradiction
    assert reversed_pairs(a, b) == [("glibc", "jemalloc")]
    assert reversed_pairs(a, a) == []
