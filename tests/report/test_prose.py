"""Computed sentences: they follow the data, call ties ties and name what was not measured."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from material import sentences
from synthetic_run import DEFAULT_ALLOCS, Alloc, swapped, write_run

from bench.report.aggregate import aggregate
from bench.report.runfolders import find_studies, load_run


def say(tmp_path: Path, allocs=DEFAULT_ALLOCS, **kw) -> dict[str, str]:
    r = tmp_path / "results"
    write_run(r, allocs=allocs, **kw)
    (study,) = find_studies(r)
    run = load_run(study.current)
    return {k: f() for k, f in sentences(run, aggregate(run)).items()}


def test_headline_names_leanest_and_heaviest(tmp_path: Path):
    s = say(tmp_path)
    assert "mimalloc-v3 is the leanest at 150 MB" in s["headline"]
    assert "glibc is the heaviest at 410 MB" in s["headline"]


def test_swapping_two_allocators_data_swaps_the_words(tmp_path: Path):
    s = say(tmp_path, allocs=swapped(DEFAULT_ALLOCS, "glibc", "mimalloc-v3"))
    assert "glibc is the leanest at 150 MB" in s["headline"]
    assert "mimalloc-v3 is the heaviest at 410 MB" in s["headline"]
    assert s["control_throughput"].startswith("In the C++ control, glibc is the fastest")


def test_close_values_tie_with_a_single_repeat(tmp_path: Path):
    allocs = (
        Alloc("a", settled_mb=200, peak_mb=300),
        Alloc("b", settled_mb=204, peak_mb=300),
        Alloc("c", settled_mb=400, peak_mb=450),
    )
    s = say(tmp_path, allocs=allocs)
    assert "a (200 MB) and b (204 MB) tie for leanest" in s["headline"]
    assert "a (200 MB) and b (204 MB), tied" in s["settled_ranking"]
    assert "less than 5% of the larger value" in s["noise"]


def test_all_equal_is_a_tie_not_a_ranking(tmp_path: Path):
    allocs = (Alloc("a"), Alloc("b"), Alloc("c"))
    s = say(tmp_path, allocs=allocs)
    assert s["headline"].startswith("All 3 allocators settled within the noise")
    assert s["settled_ranking"].startswith("All 3 tie")


def test_one_allocator_is_not_compared(tmp_path: Path):
    s = say(tmp_path, allocs=(Alloc("solo"),))
    assert s["headline"].startswith("Only solo was measured")
    assert "at least two" in s["latency"]


def test_failed_and_skipped_allocators_are_named_with_reasons(tmp_path: Path):
    s = say(tmp_path)
    assert "mimalloc-v2 (failed: preload ignored: library not found)" in s["not_measured"]
    assert "mimalloc-bun (skipped: source not reachable offline)" in s["not_measured"]


def test_latency_moved_when_it_did(tmp_path: Path):
    allocs = tuple(replace(a, p99_ms=40.0) if a.name == "glibc" else a for a in DEFAULT_ALLOCS)
    s = say(tmp_path, allocs=allocs)
    assert s["latency"].startswith("Allocator choice moved tail latency")
    assert "glibc had the highest" in s["guidance_costs"]


def test_latency_barely_moved_when_it_did_not(tmp_path: Path):
    assert say(tmp_path)["latency"].startswith("Allocator choice barely moved tail latency")


def test_fingerprints_are_classified_from_data(tmp_path: Path):
    s = say(tmp_path)["fingerprints"]
    assert "Kept what they reached" in s and "glibc and tcmalloc" in s
    assert "Gave back most of the peak (50% or more): mimalloc-v3." in s


def test_guidance_when_peak_and_settled_winners_differ(tmp_path: Path):
    allocs = (Alloc("a", peak_mb=250, settled_mb=240), Alloc("b", peak_mb=400, settled_mb=120))
    s = say(tmp_path, allocs=allocs)
    assert "lowest peak belongs to a" in s["guidance"] and "b settled lowest" in s["guidance"]
    assert "No allocator wins on both counts" in s["guidance"]
    assert "is not the leanest once settled" in s["peak_vs_settled"]


def test_disturbed_repeats_are_reported(tmp_path: Path):
    s = say(tmp_path, disturbed=("jemalloc",))
    assert "flagged 1 repeat as disturbed: jemalloc" in s["disturbed"]
