"""Reducing a run to per-allocator results, and reading the manifest's shapes defensively."""

from __future__ import annotations

import json
from pathlib import Path

from synthetic_run import write_run

from bench.report.aggregate import aggregate
from bench.report.runfolders import find_studies, load_run
from bench.report.sections.provenance import evidence, evidence_state
from bench.report.sections.trust import not_measured


def _edit_manifest(run: Path, edit) -> None:
    m = json.loads((run / "manifest.json").read_text())
    edit(m)
    (run / "manifest.json").write_text(json.dumps(m))


def _results(results: Path):
    (study,) = find_studies(results)
    return aggregate(load_run(study.current))


def test_ok_allocator_without_rows_is_reported_as_no_data(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)

    def add(m):
        m["allocators"].append({"name": "ghost", "status": "ok"})

    _edit_manifest(run, add)
    res = _results(r)
    ghost = next(a for a in res.allocators if a.name == "ghost")
    assert ghost.status == "no data" and "no summary rows" in (ghost.reason or "")
    assert "ghost (no data: the run recorded no summary rows for it)" in not_measured(res)


def test_interrupted_allocator_is_named_with_its_fix(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)

    def interrupt(m):
        m["allocators"][-1].update(
            status="incomplete",
            reason="interrupted",
            fix="allocstudy run specs/quick.yaml --resume",
        )

    _edit_manifest(run, interrupt)
    text = not_measured(_results(r))
    assert "mimalloc-bun (incomplete: interrupted; to fix: allocstudy run" in text


def test_loadgen_records_may_be_a_list_per_repeat(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)

    def as_list(m):
        for a in m["allocators"]:
            a["loadgen"] = [
                {"repeat": 0, "send_late_p99_ms": 0.4},
                {"repeat": 1, "send_late_p99_ms": 1.5},
            ]

    _edit_manifest(run, as_list)
    assert _results(r).allocators[0].send_late_p99_ms == 1.5


def test_medians_of_repeats(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, repeats=3)
    res = _results(r)
    s = res.service["glibc"].settled
    assert s.n == 3 and s.center == 410e6 and s.spread > 0
    assert res.control["glibc"].allocs_per_s.center == 12e6  # mean of 3


def test_evidence_states():
    assert (
        evidence_state(
            {"malloc_library": "/lib/x/libjemalloc.so.2", "mapped": True},
            "/usr/lib/x/libjemalloc.so.2",
        )
        == "proven"
    )
    assert (
        evidence_state(
            {"malloc_library": "/lib/x/libc.so.6", "mapped": None}, "/usr/lib/x/libjemalloc.so.2"
        )
        == "contradicted"
    )
    assert evidence_state({"mapped": False}, None) == "contradicted"
    assert evidence_state({"mapped": None}, None) == "unchecked"


def test_evidence_sentence_names_an_allocator_that_was_not_loaded(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)

    def spoil(m):
        m["allocators"][1]["evidence"]["service"][0]["mapped"] = False

    _edit_manifest(run, spoil)
    assert "jemalloc (1 of 7 processes served by another library)" in evidence(_results(r))
