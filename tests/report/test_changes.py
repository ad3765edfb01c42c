"""bench.report.changes: two runs compared, on synthetic runs whose answers are known.

The synthetic runs are written with the real table writer and read back by the real loader
and aggregate, so every verdict here goes through the same path as `allocstudy compare`.
Repeats of a synthetic run sit at 0.99, 1.00 and 1.01 of the nominal value: with three
repeats the 95% interval reaches about 2.5% either side, so runs 6% apart have intervals
that do not overlap and runs 1% apart have intervals that do.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from synthetic_run import DEFAULT_ALLOCS, Alloc, write_run

from bench.report.changes import (
    METRICS,
    Change,
    RunComparison,
    compare_runs,
    decide,
    manifest_differences,
)
from bench.report.runfolders import Run, load_run, run_at
from bench.report.stats import Sample, summarize, ties
from bench.report.units import fmt_mb

SETTLED = next(m for m in METRICS if m.experiment == "service" and m.key == "settled")


def _run(results: Path, run_id: str, **kw) -> Run:
    return load_run(run_at(write_run(results, run_id=run_id, latest=None, **kw)))


def _scaled(allocs: tuple[Alloc, ...], name: str, **factors: float) -> tuple[Alloc, ...]:
    """The allocators with some numbers of one of them multiplied."""
    return tuple(
        replace(a, **{k: getattr(a, k) * f for k, f in factors.items()}) if a.name == name else a
        for a in allocs
    )


def _change(cmp: RunComparison, allocator: str, experiment: str, key: str) -> Change:
    return next(
        c
        for c in cmp.changes
        if c.allocator == allocator and c.metric.experiment == experiment and c.metric.key == key
    )


def test_single_repeats_without_an_aa_pair_are_judged_by_the_stated_5_percent(tmp_path: Path):
    a = _run(tmp_path, "a")
    b = _run(tmp_path, "b", allocs=_scaled(DEFAULT_ALLOCS, "glibc", settled_mb=0.8, peak_mb=1.03))
    cmp = compare_runs(a, b)
    settled = _change(cmp, "glibc", "service", "settled")
    assert (settled.changed, settled.rule, settled.direction) == (True, "tie_rel", "better")
    assert settled.texts()["a"] == "410 MB" and settled.texts()["b"] == "328 MB"
    assert settled.texts()["change"] == "-82 MB" and settled.texts()["change_pct"] == "-20.0%"
    assert settled.rule_text == "beyond stated 5%"
    peak = _change(cmp, "glibc", "service", "peak")
    assert (peak.changed, peak.rule, peak.rule_text) == (False, "tie_rel", "within stated 5%")
    assert peak.texts()["change_pct"] == "+3.0%"
    other = _change(cmp, "jemalloc", "service", "settled")
    assert (other.changed, other.rule) == (False, "equal")


def test_repeats_whose_intervals_do_not_overlap_changed_and_overlapping_ones_did_not(
    tmp_path: Path,
):
    a = _run(tmp_path, "a", repeats=3)
    allocs = _scaled(DEFAULT_ALLOCS, "glibc", settled_mb=1.06, p99_ms=1.01)
    b = _run(tmp_path, "b", repeats=3, allocs=allocs)
    cmp = compare_runs(a, b)
    settled = _change(cmp, "glibc", "service", "settled")
    assert settled.a is not None and settled.a.n == 3
    assert (settled.changed, settled.rule, settled.direction) == (True, "intervals", "worse")
    assert settled.rule_text.startswith("95% intervals apart (A ±2.5%, B ±2.5%)")
    p99 = _change(cmp, "glibc", "service", "p99")
    assert (p99.changed, p99.rule) == (False, "intervals")
    assert p99.rule_text.startswith("95% intervals overlap")
    assert set(cmp.rules_used()) == {"intervals"}  # every other measure was identical
    assert {c.rule for c in cmp.changes} == {"intervals", "equal"}


def test_a_run_against_itself_changed_nothing_and_differs_in_nothing(tmp_path: Path):
    a = _run(tmp_path, "a", repeats=3)
    cmp = compare_runs(a, a)
    assert cmp.differences == () and cmp.only == ()
    assert cmp.changes and all(c.verdict == "unchanged" for c in cmp.changes)
    assert {c.rule for c in cmp.changes} == {"equal"}
    names = {c.allocator for c in cmp.changes}
    assert names == {"glibc", "jemalloc", "tcmalloc", "mimalloc-v3"}  # failed ones have no data
    per_allocator = len(cmp.changes) // len(names)
    assert per_allocator == len(METRICS)  # every measure of both experiments


def test_an_allocator_in_one_run_only_is_listed_with_what_the_other_run_says(tmp_path: Path):
    a = _run(tmp_path, "a")
    fewer = tuple(x for x in DEFAULT_ALLOCS if x.name != "tcmalloc")
    broken = tuple(
        replace(x, status="failed", reason="preload ignored") if x.name == "jemalloc" else x
        for x in fewer
    )
    b = _run(tmp_path, "b", allocs=broken)
    cmp = compare_runs(a, b)
    only = {(o.allocator, o.run, o.other) for o in cmp.only}
    assert only == {
        ("tcmalloc", "A", "not in the run"),
        ("jemalloc", "A", "failed: preload ignored"),
    }
    assert not {c.allocator for c in cmp.changes} & {"tcmalloc", "jemalloc"}
    back = compare_runs(b, a)
    assert {(o.allocator, o.run) for o in back.only} == {("tcmalloc", "B"), ("jemalloc", "B")}


def test_different_specs_are_listed_hash_first_then_the_keys_that_differ(tmp_path: Path):
    a = _run(tmp_path, "a")
    b = _run(tmp_path, "b", load_s=60.0, idle_s=20.0)
    cmp = compare_runs(a, b)
    whats = [d.what for d in cmp.differences]
    assert whats[0] == "spec hash"
    assert {"spec service.load_s", "spec service.idle_s"} <= set(whats)
    load = next(d for d in cmp.differences if d.what == "spec service.load_s")
    assert (load.a, load.b) == ("120.0", "60.0")
    assert len(cmp.differences[0].texts()[0]) == 12  # a hash is shown by its first digits
    assert cmp.to_json()["differences"][0]["a"] == a.manifest["spec_sha256"]


def test_host_tool_and_allocator_versions_that_differ_are_named():
    a = {
        "spec_sha256": "x",
        "spec": {"name": "quick"},
        "host": {"kernel": "6.18", "cpu_model": "AMD EPYC", "python": "3.11.7"},
        "tool": {"version": "0.1.0", "git_commit": "abc"},
        "confounds": {"cgroup_mode": "v1", "thp": {"before": "madvise", "during": "never"}},
        "allocators": [{"name": "jemalloc", "version": "5.3.0", "sha256": "s1", "env": {}}],
    }
    b = {
        **a,
        "host": {"kernel": "6.19", "cpu_model": "AMD EPYC", "python": "3.12.1"},
        "confounds": {"cgroup_mode": "v2", "thp": {"before": "always", "during": "never"}},
        "allocators": [{"name": "jemalloc", "version": "5.3.1", "sha256": "s2", "env": {}}],
    }
    found = {d.what: (d.a, d.b) for d in manifest_differences(a, b)}
    assert found == {
        "host kernel": ("6.18", "6.19"),
        "host python": ("3.11.7", "3.12.1"),
        "confounds cgroup_mode": ("v1", "v2"),
        "allocator jemalloc version": ("5.3.0", "5.3.1"),
        "allocator jemalloc sha256": ("s1", "s2"),
    }
    assert manifest_differences(a, a) == ()


def _one(value: float, floor: float | None = None) -> Sample:
    s = summarize([value])
    assert s is not None
    return replace(s, floor_rel=floor)


def test_single_values_are_held_against_the_larger_aa_floor_of_either_run():
    a, b = _one(100.0, floor=0.02), _one(108.0, floor=0.10)
    assert decide(a, b) == (False, "aa_floor")  # 8% is within the 10% floor of run B
    change = Change("glibc", SETTLED, a, b)
    assert change.rule_text == "within A/A floor 10.0%"
    assert decide(_one(100.0, 0.02), _one(108.0)) == (True, "aa_floor")
    assert Change("glibc", SETTLED, _one(100.0, 0.02), _one(108.0)).verdict == "changed"


def test_a_single_value_inside_the_other_runs_interval_is_unchanged():
    repeated = summarize([98.0, 100.0, 102.0])
    assert repeated is not None
    assert decide(repeated, _one(101.0)) == (False, "interval")
    text = Change("glibc", SETTLED, repeated, _one(101.0)).rule_text
    assert text == "inside A's 95% interval (±5.0%)"
    wide = summarize([50.0, 100.0, 150.0])
    assert wide is not None
    text = Change("glibc", SETTLED, _one(101.0), wide).rule_text
    assert text == "inside B's 95% interval (±124.2%, too noisy)"
    assert decide(repeated, _one(130.0)) == (True, "tie_rel")


def test_a_measure_one_run_lacks_is_not_comparable():
    change = Change("glibc", SETTLED, _one(100.0), None)
    assert (change.changed, change.verdict, change.rule) == (None, "not comparable", "missing")
    assert change.texts()["b"] == "not measured" and change.texts()["change"] == ""
    assert change.rule_text == "not measured in run B"


_VALUES = st.lists(st.floats(1.0, 1e9, allow_nan=False), min_size=1, max_size=4)
_FLOOR = st.none() | st.floats(0.0, 0.5)


@given(_VALUES, _VALUES, _FLOOR, _FLOOR)
def test_the_verdict_is_always_the_article_noise_rule(
    xs: list[float], ys: list[float], fa: float | None, fb: float | None
):
    a, b = summarize(xs), summarize(ys)
    assert a is not None and b is not None
    a, b = replace(a, floor_rel=fa), replace(b, floor_rel=fb)
    changed, rule = decide(a, b)
    assert changed == (not ties(a, b))
    if a.n >= 2 and b.n >= 2 and a.center != b.center:
        assert rule == "intervals"


def test_values_print_with_the_articles_rounding(tmp_path: Path):
    a = _run(tmp_path, "a")
    change = _change(compare_runs(a, a), "tcmalloc", "service", "peak")
    assert change.texts()["a"] == fmt_mb(340e6)
    assert change.to_json()["a"] == {"value": 340e6, "n": 1, "interval": None, "floor_rel": None}
