"""A load in stages with Poisson arrivals, in a real run: each stage's requests come at
exponential gaps of its own rate, open loop, every request and memory sample carries its stage,
`stages.arrow` sums each stage up, and the article's "After the burst" reads that table."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, run_cli

from bench.report.aggregate import aggregate
from bench.report.runfolders import load_run, run_at
from bench.report.section import Loaded
from bench.report.sections.burst import BurstSection
from bench.results.tables import read_table

STAGES = (
    "  arrivals: poisson\n"
    "  stages:\n"
    "    - {name: steady, rate: 40, duration_s: 3}\n"
    "    - {name: burst, rate: 120, duration_s: 3, ramp_s: 1}\n"
    "    - {name: trough, rate: 20, duration_s: 3}\n"
    "    - {name: again, rate: 120, duration_s: 2}\n"
)
POISSON_SPEC = (
    TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc]")
    .replace("  rate: 40\n", STAGES)
    .replace("  load_s: 5\n", "")
)


@pytest.mark.real_run
@pytest.mark.slow  # 20 s; the gaps and ramps: test_load_plan's Poisson and ramp tests
def test_a_staged_poisson_load_sends_each_stage_at_its_rate_and_records_its_stages(
    tmp_path: Path,
):
    assert "arrivals: poisson" in POISSON_SPEC and "load_s" not in POISSON_SPEC
    spec = tmp_path / "tiny.yaml"
    spec.write_text(POISSON_SPEC)
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "results"), "--no-control", "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    recorded = json.loads((run_dir / "manifest.json").read_text())["spec"]["service"]
    assert recorded["arrivals"] == "poisson" and recorded["load_s"] == 11

    rows = read_table(run_dir / "requests.arrow", "requests").to_pylist()
    load = [r for r in rows if r["phase"] == "load"]
    assert all(r["status"] == 200 for r in load)
    assert {r["stage"] for r in load} == {1, 2, 3, 4}
    assert all(r["stage"] is None for r in rows if r["phase"] != "load")
    expected = {1: 120, 2: 20 + 240, 3: 60, 4: 240}  # the burst's ramp: 1 s from 40 to 120
    for stage, mean in expected.items():
        count = sum(1 for r in load if r["stage"] == stage)
        assert abs(count - mean) < 5 * math.sqrt(mean), (stage, count)
    # in the burst's ramp the offered rate climbs from the steady rate to the burst's
    ramp = sorted(r["stage_rate"] for r in load if r["stage"] == 2)
    assert 40 <= ramp[0] < 60 and ramp[-1] == 120
    held = sorted(r["intended_s"] for r in load if r["stage"] == 2 and r["stage_rate"] == 120)
    gaps = [b - a for a, b in zip(held, held[1:], strict=False)]
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert 0.7 < cv < 1.3  # exponential: 1; evenly spaced: 0

    memory = read_table(run_dir / "memory.arrow", "memory").to_pylist()
    in_load = [m for m in memory if m["phase"] == "load"]
    assert {m["stage"] for m in in_load} <= {1, 2, 3, 4} and len({m["stage"] for m in in_load}) >= 3
    assert all(m["stage"] is None for m in memory if m["phase"] != "load")

    stages = read_table(run_dir / "stages.arrow", "stages").to_pylist()
    assert [(s["stage"], s["name"], s["rate"]) for s in stages] == [
        (1, "steady", 40),
        (2, "burst", 120),
        (3, "trough", 20),
        (4, "again", 120),
    ]
    for s in stages:
        assert s["requests"] == sum(1 for r in load if r["stage"] == s["stage"])
        assert (
            s["errors"] == 0 and s["end_anon_bytes"] and s["peak_anon_bytes"] >= s["end_anon_bytes"]
        )
        assert s["end_s"] - s["start_s"] == pytest.approx(
            {1: 3, 2: 3, 3: 3, 4: 2}[s["stage"]], abs=1e-6
        )

    # the article's "After the burst" compares exactly these three stages' ends
    run = load_run(run_at(run_dir))
    section = BurstSection()
    assert section.applies(run)
    data = section.compute(Loaded(run, aggregate(run)))
    assert data.shape is not None
    assert [data.shape.first[1], data.shape.trough[1], data.shape.second[1]] == [
        "burst",
        "trough",
        "again",
    ]
    through = data.through["glibc"]
    by_name = {s["name"]: s["end_anon_bytes"] for s in stages}
    assert (through.first_end, through.trough_end, through.second_end) == (
        by_name["burst"],
        by_name["trough"],
        by_name["again"],
    )
    assert "glibc" in section.sentences(data)["burst"]()
