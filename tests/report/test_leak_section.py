"""Leak or retention?: the verdict from the growth of the anonymous memory and of the program's
own heap, its sentences and its table (the real runs behind it: tests/experiments)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.report.runfolders import Run, RunRef
from bench.report.sections.leak.chart import leak as leak_chart
from bench.report.sections.leak.model import judge, leak_results, leak_table
from bench.report.sections.leak.words import NOT_RECORDED, leak_or_retention

MB = 1_000_000


@pytest.mark.parametrize(
    ("anon_then", "heap_then", "verdict"),
    [
        (300 * MB, 105 * MB, "allocator"),  # +200 MB, heap +5 MB
        (300 * MB, 290 * MB, "program"),  # +200 MB, heap +190 MB
        (300 * MB, 200 * MB, "both"),  # +200 MB, heap +100 MB
        (104 * MB, 150 * MB, "none"),  # +4% of the ready service
        (80 * MB, 100 * MB, "none"),  # it shrank
    ],
)
def test_the_verdict_follows_the_share_of_the_growth_the_program_holds(
    anon_then: float, heap_then: float, verdict: str
) -> None:
    g = judge(100 * MB, anon_then, 100 * MB, heap_then)
    assert g.verdict == verdict
    assert g.anon == anon_then - 100 * MB
    assert g.kept == g.anon - (heap_then - 100 * MB)


def test_without_a_heap_count_the_growth_is_not_judged() -> None:
    g = judge(100 * MB, 300 * MB, None, None)
    assert g.verdict == "unknown"
    assert g.kept is None and g.program_share is None


def _row(name: str, repeat: int = 0, **over: Any) -> dict[str, Any]:
    row = {
        "experiment": "service",
        "allocator": name,
        "repeat": repeat,
        "peak_anon_bytes": 420 * MB,
        "settled_anon_bytes": 400 * MB,
        "ready_anon_bytes": 200 * MB,
        "load_end_anon_bytes": 410 * MB,
        "heap_source": "mallinfo2",
        "ready_heap_bytes": 40 * MB,
        "load_end_heap_bytes": 60 * MB,
        "idle_end_heap_bytes": 50 * MB,
        "ready_py_blocks": 100_000,
        "load_end_py_blocks": 104_000,
        "idle_end_py_blocks": 101_000,
    }
    row.update(over)
    return row


def _run(rows: list[dict[str, Any]]) -> Run:
    names = list(dict.fromkeys(r["allocator"] for r in rows))
    manifest = {"allocators": [{"name": n, "status": "ok"} for n in names], "spec": {}}
    ref = RunRef("leak", "20261129T000000Z", Path("."), "complete", None, None)
    return Run(ref=ref, manifest=manifest, memory=[], control=[], summary=rows)


def test_retention_and_a_leak_are_told_apart_and_said_with_their_numbers() -> None:
    run = _run(
        [
            _row("glibc"),  # anon +200 MB, heap +10 MB
            _row(
                "leaky",
                ready_heap_bytes=40 * MB,
                idle_end_heap_bytes=230 * MB,
                idle_end_py_blocks=150_000,
            ),
            _row("mimalloc", heap_source=None, ready_heap_bytes=None, idle_end_heap_bytes=None),
        ]
    )
    results = leak_results(run, ["glibc", "leaky", "mimalloc"])
    assert [results[n].at_rest.verdict for n in results] == ["allocator", "program", "unknown"]
    text = leak_or_retention(results)
    assert "Retention, not a leak: glibc (anonymous memory +200 MB" in text
    assert "190 MB under glibc" in text  # what the allocator keeps
    assert (
        "The program holds its growth: leaky (anonymous memory +200 MB, its own heap +190 MB)"
        in text
    )
    assert "50% more under leaky" in text  # CPython's blocks as the second witness
    assert "mimalloc offers no count" in text
    table = leak_table(results)
    assert 'id="leak-table"' in table
    assert "the allocator keeps it" in table and "the program holds it" in table
    assert "none offered" in table


def test_a_mean_over_some_repeats_only_is_not_passed_off_as_the_heap() -> None:
    run = _run([_row("glibc", 0), _row("glibc", 1, idle_end_heap_bytes=None)])
    (result,) = leak_results(run, ["glibc"]).values()
    assert result.heap_idle_end is None
    assert result.at_rest.verdict == "unknown"
    assert result.repeats == 2


def test_a_run_made_before_the_heap_was_recorded_says_so_and_shows_no_table() -> None:
    old = {k: v for k, v in _row("glibc").items() if "heap" not in k and "blocks" not in k}
    results = leak_results(_run([old]), ["glibc"])
    assert results == {}
    assert leak_or_retention(results) == NOT_RECORDED
    assert leak_table(results) == ""
    no_chart = leak_chart({}, None)  # type: ignore[arg-type]  (no names to draw)
    assert "No chart: the run did not record the program&#x27;s live heap" in no_chart
