"""`allocstudy compare` on real runs: two tiny runs of different specs, and a run against itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from studyrun import run_cli

from bench.report.changes import METRICS
from bench.report.stats import MIN_FLOOR_REL, TIE_REL

pytestmark = pytest.mark.real_run


def _verdict_the_numbers_support(c: dict) -> str:
    """The verdict on one measure, from the values, intervals and floors `--json` printed:
    overlapping 95% intervals, a single value inside the other's interval, or a difference
    within the floor (the A/A floor, else the stated tie) are unchanged."""
    a, b = c["a"], c["b"]
    if a["value"] == b["value"]:
        return "unchanged"
    ia, ib = a["interval"], b["interval"]
    if ia and ib:
        return "unchanged" if ia[0] <= ib[1] and ib[0] <= ia[1] else "changed"
    one, single = (ia, b) if ia else (ib, a)
    if one and one[0] <= single["value"] <= one[1]:
        return "unchanged"
    floors = [f for f in (a["floor_rel"], b["floor_rel"]) if f is not None]
    floor = max(MIN_FLOOR_REL, *floors) if floors else TIE_REL
    within = abs(b["value"] - a["value"]) <= floor * max(abs(a["value"]), abs(b["value"]))
    return "unchanged" if within else "changed"


def _json(*args: str) -> dict:
    proc = run_cli("compare", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_run_against_itself_is_unchanged_in_every_measure(tiny_run: Path):
    data = _json(str(tiny_run), str(tiny_run))
    assert data["differences"] == [] and data["only"] == []
    assert {c["allocator"] for c in data["changes"]} == {"glibc", "jemalloc"}
    assert len(data["changes"]) == 2 * len(METRICS)
    for c in data["changes"]:
        assert (c["verdict"], c["changed"], c["change"]) == ("unchanged", False, 0), c
    proc = run_cli("compare", str(tiny_run), str(tiny_run))
    assert proc.returncode == 0, proc.stderr
    assert "same spec, host, tool and allocator versions" in proc.stdout
    assert f"{2 * len(METRICS)} unchanged" in proc.stdout


@pytest.mark.slow  # 18 s (a second real run); compare: the run against itself, test_changes
def test_two_runs_of_different_specs_print_the_differences_first(tiny_run: Path, tiny_run_b: Path):
    latest = tiny_run.parent / "latest"  # a study's `latest` names a run too
    proc = run_cli("compare", str(latest), str(tiny_run_b), env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.index("spec service.rate") < out.index("B against A")
    assert "spec allocators" in out
    assert "jemalloc: only in run A (the other run: not in the run)" in out

    data = _json(str(latest), str(tiny_run_b))
    assert data["a"] == f"tiny/{tiny_run.name}" and data["b"] == f"tiny/{tiny_run_b.name}"
    diffs = {d["key"]: (d["a"], d["b"]) for d in data["differences"] if d["section"] == "spec"}
    assert diffs["service.rate"] == ("40.0", "50.0")
    assert data["differences"][0]["key"] == "hash"
    assert data["only"] == [{"allocator": "jemalloc", "run": "A", "other": "not in the run"}]
    glibc = [c for c in data["changes"] if c["allocator"] == "glibc"]
    assert len(glibc) == len(METRICS)
    for c in glibc:
        # which way each measure goes depends on the runs; the rule is unit-tested in
        # test_changes. Here: the verdict is the one the printed numbers support
        assert c["verdict"] == _verdict_the_numbers_support(c), c
        assert c["rule"] in ("equal", "intervals", "interval", "aa_floor", "tie_rel"), c
        # the change is B minus A, as printed
        assert c["change"] == pytest.approx(c["b"]["value"] - c["a"]["value"])
        if c["a"]["n"] >= 2 and c["b"]["n"] >= 2 and c["change"] != 0:
            assert c["rule"] == "intervals", c  # repeated on both sides: the intervals decide


@pytest.mark.parametrize("bad", ["no/such/run", "."])
def test_a_path_that_names_no_run_is_one_line_and_exit_2(bad: str):
    proc = run_cli("compare", bad, "never/read")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"allocstudy: {bad}"), proc.stderr
