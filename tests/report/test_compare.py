"""Statistics and judgements: the degenerate cases first, then the decisions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.report.compare import (
    Sample,
    classify_fingerprint,
    extremes_ratio,
    latency_verdict,
    rank,
    shed_fraction,
    summarize,
    tie_band,
    ties,
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


def test_summarize_median_for_memory_mean_for_throughput():
    assert summarize([1.0, 2.0, 9.0]).center == 2.0
    assert summarize([1.0, 2.0, 9.0], "mean").center == 4.0
    assert summarize([1.0, 2.0, 9.0]).spread == 8.0


def test_single_runs_tie_within_the_stated_threshold():
    assert tie_band(one(100.0), one(104.0)) == pytest.approx(5.2)
    assert ties(one(100.0), one(104.0))
    assert not ties(one(100.0), one(106.0))


def test_repeats_tie_within_their_spread():
    a = summarize([100.0, 110.0, 120.0])
    b = summarize([118.0, 119.0, 120.0])
    assert tie_band(a, b) == 20.0
    assert ties(a, b)
    c = summarize([200.0, 200.0, 200.0])
    assert not ties(a, c)


def test_equal_values_always_tie_even_without_noise():
    a = summarize([5.0, 5.0])
    assert ties(a, a)


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


def test_latency_band_widens_with_repeat_noise():
    v = latency_verdict({"a": summarize([10.0, 10.0, 30.0]), "b": summarize([25.0, 25.0])})
    assert v is not None and not v.moved and v.band_ms == 20.0


def test_extremes_ratio_degenerate():
    assert extremes_ratio({}) is None
    assert extremes_ratio({"a": one(0.0), "b": one(1.0)}) is None
    assert extremes_ratio({"a": one(2.0), "b": one(5.0)}) == 2.5
