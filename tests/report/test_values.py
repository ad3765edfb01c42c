"""Named values equal what the tables say, recomputed here independently."""

from __future__ import annotations

import statistics
from pathlib import Path

from material import named_values
from synthetic_run import write_run

from bench.report.aggregate import aggregate
from bench.report.runfolders import check_freshness, find_studies, load_run
from bench.results.tables import read_table


def values_of(results: Path) -> dict[str, str]:
    (study,) = find_studies(results)
    run = load_run(study.current)
    return named_values(run, aggregate(run), check_freshness(run.manifest, [results.parent]))


def medians(results: Path, column: str, experiment: str = "service") -> dict[str, float]:
    run = next((results / "quick").glob("2*"))
    rows = read_table(run / "summary.arrow", "summary").to_pylist()
    by: dict[str, list[float]] = {}
    for r in rows:
        if r["experiment"] == experiment and r[column] is not None:
            by.setdefault(r["allocator"], []).append(r[column])
    return {k: statistics.median(v) for k, v in by.items()}


def test_leanest_and_heaviest_settled_match_the_summary(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, repeats=3)
    v = values_of(r)
    settled = medians(r, "settled_anon_bytes")
    lean = min(settled, key=settled.get)
    heavy = max(settled, key=settled.get)
    assert v["leanest_settled.name"] == lean
    assert v["leanest_settled.mb"] == f"{settled[lean] / 1e6:,.0f} MB"
    assert v["heaviest_settled.mb"] == f"{settled[heavy] / 1e6:,.0f} MB"
    assert v["settled.ratio"] == f"{settled[heavy] / settled[lean]:.1f}×"


def test_failed_allocators_read_not_measured(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r)
    v = values_of(r)
    assert v["alloc.mimalloc-v2.status"] == "failed"
    assert v["alloc.mimalloc-v2.settled.mb"] == "not measured"
    assert v["allocators.count"] == "6" and v["allocators.measured"] == "4"


def test_spec_values_come_from_the_manifest(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, load_s=600, idle_s=120)
    v = values_of(r)
    assert v["spec.load"] == "10 min" and v["spec.idle"] == "2 min"
    assert v["spec.rate"] == "200 requests/s" and v["spec.workers"] == "4"
    assert v["spec.mix"] == "50% churn, 25% json, 25% xml"
    assert v["spec.freshness"] == "current"
