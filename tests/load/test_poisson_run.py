"""Poisson arrivals in a real run: the load's requests come at exponential gaps, open loop,
latency counted from each request's intended send time."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, run_cli

from bench.results.tables import read_table

POISSON_SPEC = (
    TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc]")
    .replace("  rate: 40\n", "  rate: 60\n  arrivals: poisson\n")
    .replace("  load_s: 5\n", "  load_s: 8\n")
)


@pytest.mark.slow  # 15 s; the gaps: test_load_plan.test_poisson_arrivals_have_exponential_gaps...
def test_a_poisson_load_sends_at_exponential_gaps_and_records_them(tmp_path: Path):
    assert "arrivals: poisson" in POISSON_SPEC
    spec = tmp_path / "tiny.yaml"
    spec.write_text(POISSON_SPEC)
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "results"), "--no-control", "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = Path(proc.stdout.strip().splitlines()[-1])
    assert json.loads((run / "manifest.json").read_text())["spec"]["service"]["arrivals"] == (
        "poisson"
    )
    rows = read_table(run / "requests.arrow", "requests").to_pylist()
    load = sorted(r["intended_s"] for r in rows if r["phase"] == "load")
    # 480 expected (60/s for 8 s); a Poisson count's sd is about 22
    assert 480 - 5 * 22 < len(load) < 480 + 5 * 22
    gaps = [b - a for a, b in zip(load, load[1:], strict=False)]
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert 0.8 < cv < 1.2  # exponential: 1; evenly spaced: 0
    assert all(r["status"] == 200 for r in rows if r["phase"] == "load")
