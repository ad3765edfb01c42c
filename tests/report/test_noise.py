"""Noise on the page: intervals from repeats, the A/A pair, disturbed repeats left out.

Synthetic runs with known answers: every expected figure is recomputed here by hand from the
numbers the run was written with, never read back from the engine under test.
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from pathlib import Path

from material import cells, material
from synthetic_run import DEFAULT_ALLOCS, Alloc

from bench.report.aggregate import aggregate
from bench.report.units import fmt_mb

MEASURED = tuple(a for a in DEFAULT_ALLOCS if a.status == "ok")


def _settled_rows(m, name: str) -> list[float]:
    return [
        r["settled_anon_bytes"]
        for r in m.view.run.summary
        if r["experiment"] == "service" and r["allocator"] == name
    ]


def test_the_aa_duplicate_is_the_same_library_labelled_apart_in_every_table(tmp_path: Path):
    m = material(tmp_path, allocs=MEASURED, repeats=3, aa_pair="glibc")
    res = m.view.results
    info = {a.name: a for a in res.allocators}
    assert info["glibc-again"].same_as == "glibc"
    assert info["glibc-again"].library == info["glibc"].library
    headline = [row[0] for row in cells(m.table("headline"))]
    assert "glibc-again (A/A of glibc)" in headline and "glibc" in headline
    kinds = {row[0]: row[1] for row in cells(m.table("allocators"))[1:]}
    assert kinds["glibc-again"].endswith("(A/A: glibc run again)")
    assert "glibc" in kinds and "(A/A" not in kinds["glibc"]
    full = {row[1] for row in cells(m.table("full"))[1:] if len(row) > 1}
    assert {"glibc", "glibc-again"} <= full


def test_the_aa_duplicate_is_left_out_of_rankings_and_its_drift_stated(tmp_path: Path):
    m = material(tmp_path, allocs=MEASURED, repeats=1, aa_pair="glibc", aa_drift=0.02)
    for name in ("settled_ranking", "peak_ranking", "control_ranking", "headline"):
        assert "glibc-again" not in m.say(name), name
    # settled 410 MB and 418.2 MB: 2.0% apart; the A/A floor is that difference
    assert "The A/A pair (glibc run twice) differed by 2.0% on this measure." in m.say(
        "settled_ranking"
    )
    assert "differed by 2.0% in settled memory" in m.say("aa")
    assert m.values["aa.settled.pct"] == "2.0%"
    assert m.values["allocators.measured"] == "4"


def test_single_repeats_tie_within_the_aa_floor_not_the_stated_five_percent(tmp_path: Path):
    allocs = (
        Alloc("glibc", settled_mb=400, peak_mb=420),
        Alloc("jemalloc", settled_mb=412, peak_mb=420),  # 2.9% above glibc
        Alloc("tcmalloc", settled_mb=600, peak_mb=620),
    )
    quiet = material(tmp_path / "quiet", allocs=allocs, aa_pair="glibc", aa_drift=0.005)
    assert "glibc (400 MB) and jemalloc (412 MB), tied" not in quiet.say("settled_ranking")
    assert quiet.say("settled_ranking").startswith(
        "From leanest to heaviest: glibc (400 MB); jemalloc (412 MB); tcmalloc (600 MB)."
    )
    drifty = material(tmp_path / "drifty", allocs=allocs, aa_pair="glibc", aa_drift=0.04)
    assert "glibc (400 MB) and jemalloc (412 MB), tied" in drifty.say("settled_ranking")
    assert "differ by less than the difference of the A/A pair" in drifty.say("noise")


def test_repeats_give_every_value_its_interval_and_the_rule_is_named_once(tmp_path: Path):
    m = material(tmp_path, allocs=MEASURED, repeats=3)
    xs = _settled_rows(m, "glibc")
    mean = statistics.fmean(xs)
    half = 4.303 * statistics.stdev(xs) / 3**0.5
    expected = f"glibc ({fmt_mb(mean)} ±{half / mean * 100:.1f}%)"
    assert expected in m.say("settled_ranking")
    noise = m.say("noise")
    assert noise.startswith("Each allocator ran 3 times.") and "intervals overlap" in noise
    assert m.values["tie.rule"] == "overlapping 95% intervals of their repeats"


def test_a_noisy_measurement_reads_as_too_noisy_not_as_a_tie_at_the_leaders_value(
    tmp_path: Path,
):
    m = material(tmp_path, allocs=MEASURED, repeats=3)
    res = m.view.results
    # mimalloc-v3's control throughput spread as in the issue: 4.12 to 5.75 million/s
    shaky = replace(res.control["mimalloc-v3"].allocs_per_s, values=(4.12e6, 4.71e6, 5.75e6))
    shaky = replace(shaky, center=statistics.fmean(shaky.values))
    control = dict(res.control)
    control["mimalloc-v3"] = replace(control["mimalloc-v3"], allocs_per_s=shaky)
    from bench.report.sections import control as control_section

    text = control_section.control_ranking(replace(res, control=control), [])
    assert "mimalloc-v3" not in text.split("Too noisy")[0]
    assert "Too noisy to rank, its repeats disagreeing: mimalloc-v3 (4.86 million/s" in text
    lead = control_section.control_throughput(replace(res, control=control))
    assert "tcmalloc is the fastest" not in lead or "mimalloc-v3" in lead


def test_a_disturbed_repeat_is_left_out_of_the_mean_and_named(tmp_path: Path):
    m = material(tmp_path, allocs=MEASURED, repeats=3, disturbed=("jemalloc#2",))
    xs = _settled_rows(m, "jemalloc")
    res = aggregate(m.view.run)
    assert res.service["jemalloc"].settled.center == statistics.fmean(xs[:2])
    assert res.service["jemalloc"].settled.n == 2 and res.service["jemalloc"].excluded == 1
    said = m.say("disturbed")
    assert "left out of the latency and throughput figures and, where the disturbance" in said
    headline = {row[0]: row[-1] for row in cells(m.table("headline"))}
    assert headline["jemalloc"] == "1 repeat left out"


def test_a_timing_disturbance_is_said_to_leave_the_latency_and_keep_the_memory(tmp_path: Path):
    from bench.report.aggregate import Disturbance
    from bench.report.experiment import left_out_note
    from bench.report.sections.trust import disturbed

    res = material(tmp_path, allocs=MEASURED, repeats=3).view.results
    late = Disturbance("service", "jemalloc", 2, "load generator sent late (p99 2.9 ms > 2 ms)")
    said = disturbed(replace(res, disturbed=(late,)))
    assert "left out of the latency and throughput figures, and kept in the memory" in said
    r = res.service["jemalloc"]
    timed_only = replace(r, excluded=0, p99=replace(r.p99, excluded=2))
    assert left_out_note(timed_only, "repeat") == "repeats left out: 2 of its latency"
    both = replace(r, excluded=1, p99=replace(r.p99, excluded=2))
    assert left_out_note(both, "repeat") == "repeats left out: 1 of its memory, 2 of its latency"
    assert left_out_note(replace(r, excluded=0), "repeat") is None


def test_when_every_repeat_is_disturbed_they_all_stay_in(tmp_path: Path):
    m = material(tmp_path, allocs=MEASURED, repeats=3, disturbed=("jemalloc",))
    res = aggregate(m.view.run)
    assert res.service["jemalloc"].settled.n == 3 and res.service["jemalloc"].excluded == 0
    assert res.service["jemalloc"].settled.center == statistics.fmean(_settled_rows(m, "jemalloc"))


def test_the_article_never_divides_by_a_settled_value_too_noisy_to_rank(tmp_path: Path):
    from bench.report.sections.headline import _memory_values
    from bench.report.units import fmt_ratio

    res = material(tmp_path, allocs=MEASURED, repeats=3).view.results
    lean = min(res.service, key=lambda n: res.service[n].settled.center)
    c = res.service[lean].settled.center
    shaky = replace(res.service[lean].settled, values=(0.5 * c, 0.7 * c, 0.9 * c), center=0.7 * c)
    service = {**res.service, lean: replace(res.service[lean], settled=shaky)}
    values = _memory_values(replace(res, service=service))
    others = {n: r for n, r in res.service.items() if n != lean}
    least = min(r.settled.center for r in others.values())
    most = max(r.settled.center for r in others.values())
    assert values["settled.ratio"] == fmt_ratio(most / least)
    heaviest_peak = max(r.peak.center for r in res.service.values())
    assert values["heaviest_peak_to_leanest_settled.ratio"] == fmt_ratio(heaviest_peak / least)
    assert lean not in values["leanest_settled.name"]


def _repeat(r: int, settled: float, p99: float, reason: str | None = None) -> dict:
    return {
        "repeat": r,
        "peak_anon_bytes": settled + 50e6,
        "settled_anon_bytes": settled,
        "p50_ms": p99 / 10,
        "p95_ms": p99 / 2,
        "p99_ms": p99,
        "achieved_rps": 200.0,
        "disturbed": reason is not None,
        "disturbed_reason": reason,
    }


def test_a_repeat_disturbed_only_in_its_timing_keeps_its_memory_and_leaves_the_latency():
    from bench.report.aggregate import _service

    late = "load generator sent late (p99 2.9 ms > 2 ms)"
    busy = f"{late}; other work used 9% of the machine's CPU (> 5%): run it on a quiet machine"
    rows = [_repeat(0, 420e6, 80.0, late), _repeat(1, 424e6, 90.0), _repeat(2, 423e6, 400.0, busy)]
    r = _service(rows)
    assert r.settled.n == 3 and r.excluded == 0  # memory from every repeat
    assert r.settled.center == statistics.fmean([420e6, 424e6, 423e6])
    assert r.p99.n == 1 and r.p99.center == 90.0 and r.p99.excluded == 2


def test_a_disturbance_of_the_memory_samples_leaves_the_memory_out_too():
    from bench.report.aggregate import _service

    rows = [
        _repeat(0, 420e6, 80.0, "a memory sample was 600 ms late"),
        _repeat(1, 424e6, 90.0),
        _repeat(2, 423e6, 85.0, "cpu pressure 41% above 20%"),  # a reason not known: doubtful
    ]
    r = _service(rows)
    assert r.settled.n == 1 and r.excluded == 2 and r.p99.n == 1


def test_only_the_timing_reasons_spare_the_memory():
    from bench.measure.runstats import disturbs_memory

    assert not disturbs_memory("load generator sent late (p99 2.5 ms > 2 ms)")
    assert not disturbs_memory(
        "load generator sent late (p99 9.7 ms > 2 ms); other work used 14% of the machine's "
        "CPU (> 5%): run it on a quiet machine"
    )
    assert disturbs_memory(
        "load generator sent late (p99 3 ms > 2 ms); a memory sample was 600 ms late"
    )
    assert disturbs_memory("the load generator started 0.20 s late, so its phases began after")
    assert disturbs_memory(None) and disturbs_memory("")
