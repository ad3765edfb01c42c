"""The article's memory-limit section: who lived under the limit, who was killed and when,
at what latency, judged by the noise rule; one sentence and no table for a run without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.feather as feather
from material import sentences
from synthetic_run import write_run

from bench.report.aggregate import aggregate
from bench.report.runfolders import Run, RunRef, find_studies, load_run
from bench.report.sections.limit import NO_LIMIT, limit_run, limit_table, memory_limit
from bench.report.site import Site
from bench.results.tables import read_table, to_table, write_table

LIMIT = 375_000_000


def _row(name: str, *, kills: int = 0, first: float | None = None, p99: float = 20.0,
         errors: int = 0, repeat: int = 0) -> dict[str, Any]:  # fmt: skip
    return {
        "experiment": "service",
        "allocator": name,
        "repeat": repeat,
        "peak_anon_bytes": 350e6,
        "settled_anon_bytes": 340e6,
        "p99_ms": p99,
        "requests": 2400,
        "errors": errors,
        "memory_limit_bytes": LIMIT,
        "oom_kills": kills,
        "first_oom_s": first,
        "limit_hits": 100 * kills,
        "peak_charged_bytes": 370e6,
    }


def _run(rows: list[dict[str, Any]], load_start: float = 4.0) -> Run:
    names = list(dict.fromkeys(r["allocator"] for r in rows))
    manifest = {
        "spec": {"service": {"workers": 4, "load_s": 12, "idle_s": 7}},
        "allocators": [
            {
                "name": n,
                "status": "ok",
                "phases": {
                    "service": [
                        {"repeat": r["repeat"], "phase": "load", "start_s": load_start}
                        for r in rows
                        if r["allocator"] == n
                    ]
                },
            }
            for n in names
        ],
    }
    ref = RunRef("memory-limit", "20261129T000000Z", Path("."), "complete", None, None)
    return Run(ref=ref, manifest=manifest, memory=[], control=[], summary=rows)


def test_a_run_without_a_limit_says_so_and_shows_no_table():
    run = _run([{**_row("glibc"), "memory_limit_bytes": None}])
    assert limit_run(run) is None
    assert memory_limit(None, workers=4, ranked=["glibc"]) == NO_LIMIT
    assert limit_table(None) == ""


def test_the_allocator_with_no_kill_lived_under_it_and_the_others_are_ordered_by_first_kill():
    run = _run(
        [
            _row("glibc"),
            _row("jemalloc", kills=3, first=12.5, p99=10_000, errors=40),
            _row("tcmalloc", kills=5, first=6.0, p99=10_000, errors=90),
        ]
    )
    view = limit_run(run)
    assert view is not None and view.limit_bytes == LIMIT
    assert view.lived == ["glibc"] and view.killed == ["jemalloc", "tcmalloc"]
    assert view.results["tcmalloc"].first_kill_s.center == 2.0  # 6 s on the clock, load at 4
    text = memory_limit(view, workers=4, ranked=["glibc", "jemalloc", "tcmalloc"])
    assert "a memory limit of 375 MB on its cgroup: the supervisor and its 4 workers" in text
    assert "glibc lived under it: no worker was killed in the run (12 s of load and 7 s" in text
    assert "(12 s of load and 7 s of idle); its charged peak was 370 MB." in text
    assert (
        "From the first to lose a worker to the last: tcmalloc (2.0 s into the load); "
        "jemalloc (8.5 s into the load)." in text
    )
    assert "Kills in all: jemalloc 3 and tcmalloc 5." in text
    assert "Under the cap tail latency moved: p99 ranged from 20 ms (glibc) to 10,000 ms" in text
    assert "jemalloc 40 of 2,400 and tcmalloc 90 of 2,400; none for glibc." in text


def test_first_kills_within_the_noise_are_called_a_tie():
    run = _run([_row("jemalloc", kills=1, first=10.0), _row("mimalloc-v2", kills=2, first=10.2)])
    text = memory_limit(limit_run(run), workers=4, ranked=["jemalloc", "mimalloc-v2"])
    assert "No allocator lived under it." in text
    assert "Both tie: jemalloc (6.0 s into the load) and mimalloc-v2 (6.2 s" in text
    assert "Under the cap tail latency barely moved" in text  # 20 ms both: within the band


def test_a_kill_in_the_warm_up_and_a_partial_one_are_said_as_such():
    run = _run(
        [
            _row("tcmalloc", kills=1, first=3.0),
            _row("glibc", kills=1, first=20.0, repeat=0),
            _row("glibc", kills=0, repeat=1),
        ]
    )
    view = limit_run(run)
    assert view is not None and not view.results["glibc"].lived
    text = memory_limit(view, workers=4, ranked=["tcmalloc", "glibc"])
    assert "(only glibc in 1 of 2 repeats)" in text
    assert "tcmalloc (in the warm-up)" in text
    table = limit_table(view)
    assert "no: 1 of 2 repeats" in table and "in the warm-up" in table


def test_a_kill_after_the_load_is_said_to_be_in_the_idle_and_equal_counts_are_each():
    run = _run([_row("jemalloc", kills=1, first=18.5), _row("tcmalloc", kills=1, first=10.0)])
    text = memory_limit(limit_run(run), workers=4, ranked=["jemalloc", "tcmalloc"])
    assert "tcmalloc (6.0 s into the load); jemalloc (2.5 s into the idle)." in text
    assert "Kills in all: 1 each." in text


def test_the_a_a_duplicate_is_in_the_table_but_not_in_the_sentences():
    run = _run([_row("glibc"), _row("glibc-again"), _row("jemalloc", kills=1, first=9.0)])
    view = limit_run(run)
    text = memory_limit(view, workers=4, ranked=["glibc", "jemalloc"])
    assert "glibc-again" not in text
    assert "glibc-again" in limit_table(view)


def _with_limit(run_dir: Path, kills: dict[str, int]) -> None:
    """Rewrite a synthetic run's summary as a run under a limit would have written it."""
    path = run_dir / "summary.arrow"
    rows = read_table(path, "summary").to_pylist()
    for r in rows:
        if r["experiment"] == "service":
            n = kills.get(r["allocator"], 0)
            r.update(
                memory_limit_bytes=LIMIT,
                oom_kills=n,
                first_oom_s=15.0 if n else None,
                limit_hits=n * 10,
                peak_charged_bytes=int(r["peak_anon_bytes"] * 1.05),
            )
    write_table(path, "summary", to_table("summary", rows))


def test_the_article_quotes_the_section_from_a_run_under_a_limit(tmp_path: Path):
    results = tmp_path / "results"
    run_dir = write_run(results)
    _with_limit(run_dir, {"glibc": 2})
    (study,) = find_studies(results)
    run = load_run(study.current)
    said = sentences(run, aggregate(run))["memory_limit"]()
    assert "The kernel killed workers of glibc: the first 3.0 s into the load, 2 in all." in said
    page = "# T\n\n{{ say.memory_limit }}\n\n{{ table.memory_limit }}\n"
    md = Site(results).render("index.md", page)
    assert 'id="memory-limit-table"' in md and "375 MB" in md


def test_a_summary_written_before_the_limit_columns_still_reads(tmp_path: Path):
    results = tmp_path / "results"
    run_dir = write_run(results)
    path = run_dir / "summary.arrow"
    table = feather.read_table(path)
    old = table.drop_columns(
        ["memory_limit_bytes", "oom_kills", "first_oom_s", "limit_hits", "peak_charged_bytes"]
    )
    feather.write_feather(old.replace_schema_metadata(table.schema.metadata), path)
    (study,) = find_studies(results)
    run = load_run(study.current)
    assert limit_run(run) is None
    assert sentences(run, aggregate(run))["memory_limit"]() == NO_LIMIT
