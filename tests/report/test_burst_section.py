""" "After the burst": which stages it compares, and what it says of each allocator, on stage
rows whose answer is known."""

from __future__ import annotations

from bench.report.sections.burst import (
    AfterBurst,
    Through,
    burst_latency,
    burst_sentences,
    burst_shape,
    burst_table,
    through_the_burst,
    verdict,
)
from bench.report.units import MB

STEADY, BURST, TROUGH, AGAIN = (
    (1, "steady", 150),
    (2, "burst", 400),
    (3, "trough", 40),
    (
        4,
        "burst2",
        400,
    ),
)


def test_the_shape_is_the_first_top_stage_the_lowest_after_it_and_the_next_top_stage():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    assert shape is not None
    assert (shape.first, shape.trough, shape.second) == (BURST, TROUGH, AGAIN)
    # a ramp up, one burst, or a single stage have no trough between two bursts
    assert burst_shape([STEADY, BURST]) is None
    assert burst_shape([STEADY, BURST, TROUGH]) is None
    assert burst_shape([(1, "load", 200)]) is None
    # the lowest stage between the bursts is the trough, whatever lies around it
    shape = burst_shape([BURST, (2, "cool", 100), (3, "low", 20), (4, "warm", 100), AGAIN])
    assert shape is not None and shape.trough == (3, "low", 20) and shape.second == AGAIN


def _rows(name: str, ends: dict[int, float], repeat: int = 0) -> list[dict]:
    return [
        {"allocator": name, "repeat": repeat, "stage": s, "end_anon_bytes": int(mb * MB)}
        for s, mb in ends.items()
    ]


def test_each_allocator_is_the_median_of_its_repeats_that_ran_all_three():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    assert shape is not None
    rows = _rows("glibc", {2: 600, 3: 600, 4: 610}, 0) + _rows("glibc", {2: 620, 3: 590, 4: 630}, 1)
    rows += _rows("glibc", {2: 900, 3: 900}, 2)  # cut short: never reached the second burst
    rows += _rows("jemalloc", {2: 640, 3: 450, 4: 650})
    found = through_the_burst(rows, shape, ["jemalloc", "glibc", "tcmalloc"])
    assert list(found) == ["jemalloc", "glibc"]  # tcmalloc has no rows
    assert found["glibc"].repeats == 2 and found["glibc"].first_end == 610 * MB


def test_the_verdict_says_kept_returned_reused_or_grew_by_the_tie_rule():
    def say(first: float, trough: float, second: float) -> str:
        return verdict(Through("x", first * MB, trough * MB, second * MB, 1))

    assert say(600, 595, 610) == "kept it through the trough, then reused it"
    assert say(600, 450, 605) == (
        "gave back 150 MB in the trough, then took it again in the second burst"
    )
    assert say(600, 590, 700) == (
        "kept it through the trough, then grew again by 100 MB in the second burst"
    )
    assert say(600, 300, 700) == (
        "gave back 300 MB in the trough, then took it again and 100 MB more in the second burst"
    )
    assert say(600, 450, 500) == (
        "gave back 150 MB in the trough, then ended the second burst 100 MB leaner"
    )
    assert say(600, 700, 720).startswith("grew by 100 MB in the trough")


def test_the_sentences_tell_each_allocator_s_story_from_its_numbers():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    through = {
        name: Through(name, first * MB, trough * MB, second * MB, 1)
        for name, first, trough, second in [
            ("glibc", 600, 600, 610),
            ("jemalloc", 610, 450, 620),
            ("tcmalloc", 620, 590, 700),
            ("mimalloc-v3", 630, 520, 560),
            ("mimalloc-v2", 600, 300, 700),
        ]
    }
    text = burst_sentences(AfterBurst(None, None, shape, through))  # type: ignore[arg-type]
    assert text == (
        "glibc kept through the trough what the first burst left, and the second burst "
        "reused it: it ended within 5% of the first. "
        "jemalloc gave memory back in the trough (160 MB, 26% of its memory after the first "
        "burst) and took it again in the second burst, which ended within 5% of the first: "
        "returned memory is faulted in anew when the traffic comes back. "
        "tcmalloc kept what the first burst left, yet grew again in the second burst (80 MB, "
        "13% of its memory after the first burst): what it kept was not reused for the same "
        "traffic. "
        "mimalloc-v2 gave memory back in the trough (300 MB, 50% of its memory after the "
        "first burst), and the second burst took it again and more: it ended above the first "
        "(100 MB, 17% of its memory after the first burst). "
        "mimalloc-v3 ended the second burst below the first (70 MB, 11% of its memory after "
        "the first burst). "
        "In the trough, mimalloc-v3 also gave memory back (110 MB, 17% of its memory after the "
        "first burst)."
    )
    # swap two allocators' numbers: the words follow the numbers, not the names
    swapped = {**through, "glibc": Through("glibc", 620 * MB, 590 * MB, 700 * MB, 1)}
    swapped["tcmalloc"] = Through("tcmalloc", 600 * MB, 600 * MB, 610 * MB, 1)
    text = burst_sentences(AfterBurst(None, None, shape, swapped))  # type: ignore[arg-type]
    assert text.startswith("tcmalloc kept through the trough") and "glibc kept what" in text


def test_memory_given_back_beyond_what_the_program_freed_is_named():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    through = {
        "jemalloc": Through("jemalloc", 1434 * MB, 712 * MB, 1511 * MB, 1),
        "glibc": Through("glibc", 1307 * MB, 1307 * MB, 1332 * MB, 1),
    }
    live = (1091 * MB, 486 * MB, 1103 * MB)
    text = burst_sentences(AfterBurst(None, None, shape, through, (), live))  # type: ignore[arg-type]
    assert "jemalloc gave back more than the 605 MB the program itself freed in the trough" in text
    less = {**through, "jemalloc": Through("jemalloc", 1434 * MB, 900 * MB, 1440 * MB, 1)}
    text = burst_sentences(AfterBurst(None, None, shape, less, (), live))  # type: ignore[arg-type]
    assert "more than the" not in text


def test_the_bursts_latency_is_the_median_of_the_repeats_kept_with_its_range_said():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    assert shape is not None
    rows = [
        {"allocator": a, "repeat": rep, "stage": st, "p99_ms": ms, "errors": err}
        for a, rep, st, ms, err in [
            ("glibc", 0, 2, 200.0, 0), ("glibc", 1, 2, 240.0, 0), ("glibc", 2, 2, 900.0, 7),
            ("glibc", 0, 4, 600.0, 0), ("glibc", 1, 4, 700.0, 1), ("glibc", 0, 3, 5000.0, 50),
            ("jemalloc", 0, 2, 150.0, 0), ("jemalloc", 0, 4, 260.0, 0),
        ]
    ]  # fmt: skip
    p99, failed = burst_latency(rows, shape, ["glibc", "jemalloc"], frozenset({("glibc", 2)}))
    assert p99 == {"glibc": {2: 220.0, 4: 650.0}, "jemalloc": {2: 150.0, 4: 260.0}}
    assert failed == 1  # the trough's and the saturated repeat's failures are not the bursts'
    through = {a: Through(a, 600 * MB, 600 * MB, 610 * MB, 1) for a in ("glibc", "jemalloc")}
    data = AfterBurst(None, None, shape, through, (), (None, None, None), p99, failed)  # type: ignore[arg-type]
    assert burst_sentences(data).endswith(
        "Under the bursts the app's p99 latency ran from 150 ms (jemalloc) to 220 ms (glibc) in "
        "the first and from 260 ms (jemalloc) to 650 ms (glibc) in the second; 1 request "
        "failed in them."
    )


def test_a_saturated_repeat_is_left_out_and_said():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    assert shape is not None
    rows = _rows("glibc", {2: 600, 3: 600, 4: 610}, 0) + _rows("glibc", {2: 900, 3: 900, 4: 990}, 1)
    found = through_the_burst(rows, shape, ["glibc"], frozenset({("glibc", 1)}))
    assert found["glibc"].repeats == 1 and found["glibc"].second_end == 610 * MB
    none = through_the_burst(rows, shape, ["glibc"], frozenset({("glibc", 0), ("glibc", 1)}))
    text = burst_sentences(AfterBurst(None, None, shape, none, ("glibc",)))  # type: ignore[arg-type]
    assert text.startswith("The app could not keep up with the burst in any repeat of glibc")


def _staged(tmp_path):
    """A synthetic run whose load ran as four stages: steady, burst, trough, burst again."""
    import dataclasses

    from synthetic_run import write_run

    from bench.report.aggregate import aggregate
    from bench.report.runfolders import find_studies, load_run

    write_run(tmp_path / "results")
    (study,) = find_studies(tmp_path / "results")
    run = load_run(study.current)
    res = aggregate(run)
    load = [r for r in run.memory if r.get("experiment") == "service" and r["phase"] == "load"]
    t0, t1 = min(r["t_s"] for r in load), max(r["t_s"] for r in load) + 0.001
    cut = [t0 + (t1 - t0) * f for f in (0.0, 0.3, 0.5, 0.8, 1.0)]
    plan = [(1, "steady", 150.0), (2, "burst", 400.0), (3, "trough", 40.0), (4, "again", 400.0)]
    for r in load:
        k = next(i for i in range(4) if cut[i] <= r["t_s"] < cut[i + 1])
        r["stage"], r["stage_rate"] = plan[k][0], plan[k][2]
    stages = []
    for i, name in enumerate(n for n in res.names if n in res.service):
        for k, (number, stage, rate) in enumerate(plan):
            end = {1: 300, 2: 600 + 10 * i, 3: 450 + 40 * i, 4: 610 + 30 * i}[number]
            stages.append(
                {"allocator": name, "repeat": 0, "stage": number, "name": stage, "rate": rate,
                 "start_s": cut[k], "end_s": cut[k + 1], "end_anon_bytes": end * MB}
            )  # fmt: skip
    return dataclasses.replace(run, stages=stages), res


def test_a_staged_run_draws_the_rate_band_and_the_burst_chart_as_labelled_figures(tmp_path):
    import dataclasses

    from material import charts

    run, res = _staged(tmp_path)
    drawn = charts(run, res)
    burst = drawn["burst"]()
    assert burst.startswith("<figure") and 'role="img"' in burst and "<table" in burst
    assert "end of burst" in burst and "end of trough" in burst and "end of again" in burst
    staircase = drawn["staircase"]()
    assert "the rate the load offered in each stage: steady 150 requests/s" in staircase
    assert "The band above the chart is the rate the load offered over time" in staircase
    # a run of one stage has no band, and no burst to compare
    one_stage = dataclasses.replace(run, stages=[])
    assert "The band above" not in charts(one_stage, res)["staircase"]()
    assert "burst" not in charts(one_stage, res)


def test_the_live_payload_sentence_follows_what_the_program_freed_in_the_trough():
    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    through = {"glibc": Through("glibc", 600 * MB, 600 * MB, 610 * MB, 1)}
    freed = AfterBurst(None, None, shape, through, (), (500 * MB, 150 * MB, 505 * MB))  # type: ignore[arg-type]
    assert burst_sentences(freed).startswith(
        "The program itself held 500 MB at the end of the first burst, 150 MB at the end of "
        "the trough and 505 MB at the end of the second burst: what it freed in the trough"
    )
    full = AfterBurst(None, None, shape, through, (), (554 * MB, 554 * MB, 553 * MB))  # type: ignore[arg-type]
    assert burst_sentences(full).startswith(
        "The program itself held about as much at the end of the trough (554 MB) as at the "
        "end of the first burst (554 MB): its live set stayed as large"
    )


def test_the_staircase_sentence_says_climbing_for_one_rate_and_rising_for_stages(tmp_path):
    import copy
    import dataclasses

    from bench.report.prose.memory import staircase

    run, res = _staged(tmp_path)
    one_rate = staircase(run, res)
    assert "allocators kept climbing after the first seconds" in one_rate
    manifest = copy.deepcopy(run.manifest)
    manifest["spec"]["service"]["stages"] = [
        {"name": name, "rate": rate, "duration_s": 30} for _, name, rate in (STEADY, BURST, AGAIN)
    ]
    staged = staircase(dataclasses.replace(run, manifest=manifest), res)
    assert "of load in 3 stages" in staged and "kept climbing" not in staged
    assert "with the stages moving it on the way (the band above the chart)" in staged


def test_one_growth_told_two_ways_shows_the_share_the_rule_read():
    """The same +67 MB is 5.3% of one allocator's memory after the first burst and 4.8% of
    another's: the stories differ by the tie rule, and the page prints the shares it read, a
    decimal where they would both print as 5% (a real burst run read "+67 MB, grew again"
    beside "+67 MB, reused it")."""
    from types import SimpleNamespace

    shape = burst_shape([STEADY, BURST, TROUGH, AGAIN])
    through = {
        "glibc": Through("glibc", 1259 * MB, 1260 * MB, 1326 * MB, 1),
        "mimalloc-v3": Through("mimalloc-v3", 1400 * MB, 1360 * MB, 1467 * MB, 1),
    }
    full = SimpleNamespace(allocators=[], names=list(through))  # what Names.of reads
    data = AfterBurst(None, full, shape, through)  # type: ignore[arg-type]
    text = burst_sentences(data)
    assert "mimalloc-v3 kept through the trough what the first burst left, and the second " in text
    assert (
        "glibc kept what the first burst left, yet grew again in the second burst (67 MB, "
        "5.3% of its memory after the first burst)" in text
    )
    table = burst_table(data)
    assert "+67 MB (5.3%)" in table and "+67 MB (4.8%)" in table
    assert "40 MB (3%)" in table  # a whole percentage away from the edge
    leaner = {"jemalloc": Through("jemalloc", 1455 * MB, 748 * MB, 1419 * MB, 1)}
    table = burst_table(AfterBurst(None, full, shape, leaner))  # type: ignore[arg-type]
    assert "\u221236 MB (2%)" in table  # one sign, the true minus of the MB
