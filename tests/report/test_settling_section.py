"""Settling over time in the article: settle times, still-falling values never ranked, the
timers as read back, and the idle held against them (synthetic runs whose answer is known)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from material import material, sentences
from synthetic_run import DEFAULT_ALLOCS, Alloc, write_run

from bench.report.aggregate import aggregate
from bench.report.runfolders import find_studies, load_run
from bench.report.sections.settling import timers_table
from bench.report.units import fmt_ratio

ALLOCS = (
    Alloc("glibc", 48, 420, 410, settle_s=0.0),
    Alloc("jemalloc", 52, 360, 250, settle_s=22.0),
    Alloc("tcmalloc", 50, 340, 330, settle_s=0.0),
    Alloc("mimalloc-v3", 46, 310, 300, settle_s=0.5),
)


def _load(tmp_path: Path, allocs=ALLOCS, **kw):
    r = tmp_path / "results"
    write_run(r, allocs=allocs, **kw)
    (study,) = find_studies(r)
    run = load_run(study.current)
    return run, aggregate(run)


def say(tmp_path: Path, allocs=ALLOCS, **kw) -> dict[str, str]:
    run, res = _load(tmp_path, allocs, **kw)
    return {k: f() for k, f in sentences(run, res).items()}


def test_settle_times_follow_the_data(tmp_path: Path):
    text = say(tmp_path)["settling"]
    assert "jemalloc gave back 31% of its peak and settled 22 s into the idle" in text
    assert "glibc, tcmalloc and mimalloc-v3 were within 1% of their settled values" in text


def test_swapping_settle_times_swaps_the_sentence(tmp_path: Path):
    allocs = (
        replace(ALLOCS[0], settle_s=22.0),
        replace(ALLOCS[1], settle_s=0.0),
        *ALLOCS[2:],
    )
    text = say(tmp_path, allocs)["settling"]
    assert "glibc gave back 2% of its peak and settled 22 s into the idle" in text
    assert "jemalloc, tcmalloc and mimalloc-v3 were within 1% of their settled values" in text


def test_a_value_still_falling_is_never_ranked_as_settled(tmp_path: Path):
    # jemalloc is the lowest settled value, but its memory was still falling: not the leanest
    allocs = (ALLOCS[0], replace(ALLOCS[1], falling=True), *ALLOCS[2:])
    s = say(tmp_path, allocs, idle_s=30.0)
    assert "jemalloc" not in s["headline"].split("Not ranked as settled")[0]
    assert "mimalloc-v3 is the leanest at 300 MB" in s["headline"]
    assert (
        "Not ranked as settled: jemalloc was still returning memory when idle ended after 30 s"
        in s["settled_ranking"]
    )
    assert "jemalloc was still returning memory when idle ended after 30 s" in s["settling"]
    assert (
        "Still returning memory when idle ended, so not classified: jemalloc" in s["fingerprints"]
    )
    # the peak is no settled value: it stays ranked
    assert "jemalloc (360 MB)" in s["peak_ranking"]
    # nor is memory per byte held once settled: its lowest ratio is not the leanest
    assert "jemalloc" not in s["overhead"].split("Not ranked as settled")[0]
    assert "Not ranked as settled: jemalloc was still returning memory" in s["overhead"]
    # and the leanest settled value the article divides by is a value at rest
    values = material(tmp_path / "again", allocs=allocs, idle_s=30.0).values
    assert values["heaviest_peak_to_leanest_settled.ratio"] == fmt_ratio(420 / 300)
    assert values["settled.ratio"] == fmt_ratio(410 / 300)


def test_a_falling_repeat_is_left_out_when_settled_ones_exist(tmp_path: Path):
    run, res = _load(tmp_path, repeats=3)
    assert res.service["jemalloc"].settled.falling_after_s is None
    assert res.service["jemalloc"].falling == 0


def test_timers_are_listed_as_read_back_and_held_against_the_idle(tmp_path: Path):
    run, res = _load(tmp_path, idle_s=8.0)
    table = timers_table(run, res)
    assert "opt.dirty_decay_ms" in table and "10000 ms" in table and "purge_delay" in table
    text = {k: f() for k, f in sentences(run, res).items()}["timers"]
    assert "The longest return timer here is jemalloc's: up to 10 s after the last free" in text
    assert "That idle (8 s) ended before jemalloc's timer ran out" in text
    long_idle = {k: f() for k, f in sentences(*_load(tmp_path / "b", idle_s=60.0)).items()}
    assert "ended before" not in long_idle["timers"]


def test_a_run_without_timers_or_settle_times_says_so(tmp_path: Path):
    allocs = tuple(replace(a, timers=False) for a in DEFAULT_ALLOCS)
    run, res = _load(tmp_path, allocs)
    assert timers_table(run, res) == ""
    text = {k: f() for k, f in sentences(run, res).items()}["timers"]
    assert "recorded no allocator's return timers" in text


def test_an_aa_pair_that_ties_says_so_and_one_that_does_not_turns_rankings_provisional(
    tmp_path: Path,
):
    from bench.report.notes import banners
    from bench.report.runfolders import check_freshness

    run, res = _load(tmp_path, aa_pair="glibc", aa_drift=0.001, repeats=3)
    text = {k: f() for k, f in sentences(run, res).items()}["aa"]
    assert "they tied on every measure" in text
    (study,) = find_studies(tmp_path / "results")
    fresh = check_freshness(run.manifest, [])
    assert not any("Provisional" in b for b in banners(study, run, fresh, res))

    run, res = _load(tmp_path / "b", aa_pair="glibc", aa_drift=0.3, repeats=3)
    text = {k: f() for k, f in sentences(run, res).items()}["aa"]
    assert "they did not tie on settled memory, peak memory" in text
    assert "the rankings on this page are provisional" in text
    (study,) = find_studies(tmp_path / "b" / "results")
    assert any(
        "Provisional rankings" in b
        for b in banners(study, run, check_freshness(run.manifest, []), res)
    )


def test_a_single_clean_repeat_is_never_ranked_against_intervals(tmp_path: Path):
    # two of jemalloc's three repeats disturbed: one clean repeat left, the lowest value
    s = say(tmp_path, repeats=3, disturbed=("jemalloc#0", "jemalloc#1"))
    lead, _, apart = s["headline"].partition("Not ranked:")
    assert "jemalloc" not in lead and "mimalloc-v3 is the leanest" in lead
    assert "jemalloc (" in apart and "has a single clean repeat left" in apart
    assert "has a single clean repeat left" in s["settled_ranking"]


def test_a_ranking_of_repeats_all_disturbed_says_so_and_latency_keeps_failed_repeats(
    tmp_path: Path,
):
    s = say(tmp_path, repeats=3, disturbed=("jemalloc",))
    assert "Every repeat of jemalloc ran while the machine was busy" in s["settled_ranking"]
    assert "ran while the machine was busy" not in say(tmp_path / "b", repeats=3)["settled_ranking"]


def test_a_repeat_flagged_for_failures_stays_in_latency_and_leaves_memory():
    from bench.report.aggregate import _service

    def row(repeat: int, p99: float, flags: str | None) -> dict:
        return {
            "repeat": repeat,
            "peak_anon_bytes": 400e6,
            "settled_anon_bytes": 380e6 + repeat * 1e6,
            "p50_ms": 1.0,
            "p95_ms": 2.0,
            "p99_ms": p99,
            "achieved_rps": 200.0,
            "flagged": flags is not None,
            "flags": flags,
            "disturbed": False,
        }

    r = _service(
        [row(0, 4.0, None), row(1, 10_000.0, "5 of 2400 load requests failed"), row(2, 4.2, None)]
    )
    assert r is not None
    assert r.settled.n == 2 and r.excluded == 1  # memory: the flagged repeat left out
    assert r.p99 is not None and r.p99.n == 3 and max(r.p99.values) == 10_000.0  # charged


def test_the_kernel_high_water_mark_says_whether_the_samples_caught_the_peak(tmp_path: Path):
    s = say(tmp_path)
    assert "the samples caught the peak" in s["peak_caught"]
    assert "memory.max_usage_in_bytes" in s["peak_caught"]
    allocs = (ALLOCS[0], replace(ALLOCS[1], missed_mb=40.0), *ALLOCS[2:])
    s = say(tmp_path / "b", allocs)
    assert "It rose above what the samples saw for jemalloc (by 40 MB)" in s["peak_caught"]
    assert "caught the peak" not in s["peak_caught"]


def test_a_saturated_allocator_is_never_ranked_and_the_lead_says_why(tmp_path: Path):
    allocs = (*ALLOCS[:3], replace(ALLOCS[3], settled_mb=100))  # mimalloc-v3 lowest, saturated
    s = say(tmp_path, (*allocs[:3], replace(allocs[3], saturated=True)))
    assert s["headline"].startswith(
        "**The app could not keep up** under mimalloc-v3: the app served 17 of 60 requests a second"
    )
    assert "jemalloc is the leanest" in s["headline"]  # the next one leads
    assert (
        "Not ranked: mimalloc-v3, whose every repeat was measured while the app could not keep"
        in s["settled_ranking"]
    )
    assert "mimalloc-v3 is the leanest" in say(tmp_path / "b", allocs)["headline"]
