"""The example app's flow, studied for real: `allocstudy run` of a spec derived from
examples/myapp.yaml whose traffic is the example's note lifecycle (create, read, delete) beside
a plain listing, under one allocator for a few seconds. Each step is a row of its own, and no
read or delete misses its note: the id is the one the create answered, never a guessed one,
and the steps of one flow reach the worker that holds the note."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from studyrun import run_cli

from bench.results.manifest import read_manifest
from bench.results.rundir import read_rows

pytestmark = pytest.mark.real_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS = ("note lifecycle 1/3: create", "note lifecycle 2/3: read", "note lifecycle 3/3: delete")


def _derived_spec(tmp: Path) -> Path:
    """myapp.yaml with the example's flow (its lines verbatim, a larger weight) and one
    listing as traffic, tiny phases, one allocator, no control."""
    lines = (EXAMPLES / "myapp.jsonl").read_text(encoding="utf-8").splitlines()
    flow = [json.loads(line) for line in lines if line.startswith('{"flow"')]
    assert [step["name"] for step in flow] == ["create", "read", "delete"]
    flow[0]["weight"] = 3
    listing = {"name": "list notes", "method": "GET", "path": "/notes?limit=5", "weight": 1}
    traffic = tmp / "flow.jsonl"
    traffic.write_text("".join(json.dumps(r) + "\n" for r in [listing, *flow]), encoding="utf-8")
    data = yaml.safe_load((EXAMPLES / "myapp.yaml").read_text())
    data["service"].update(
        app_dir=str(EXAMPLES / "apps"),
        requests=str(traffic),
        workers=2,
        rate=40,
        warmup_s=1,
        load_s=3,
        idle_s=2,
        sample_interval_s=0.5,
        settle_window_s=1,
        idle_rate=2,
    )
    data.update(allocators=["glibc"], repeats=1)
    data["control"] = {"enabled": False}
    data["machine"] = {"set_confounds": False}
    spec = tmp / "myapp-flow.yaml"
    spec.write_text(yaml.safe_dump(data))
    return spec


@pytest.mark.slow  # 8 s; flows: test_flow_generator (a real server); own app: test_own_app_study
def test_the_example_flow_runs_in_a_real_study_with_its_own_rows_and_no_guessed_ids(
    tmp_path: Path,
) -> None:
    proc = run_cli("run", str(_derived_spec(tmp_path)), "--out", str(tmp_path / "out"), "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    manifest = read_manifest(run_dir)
    recorded = {r["name"]: r for r in manifest["workload"]["requests"]}
    assert [(recorded[s]["flow"], recorded[s]["step"]) for s in STEPS] == [
        ("note lifecycle", 1),
        ("note lifecycle", 2),
        ("note lifecycle", 3),
    ]

    rows = [r for r in read_rows(run_dir)["requests"] if r["endpoint"] != "health"]
    steps = Counter(r["endpoint"] for r in rows)
    assert steps["note lifecycle 1/3: create"] >= 10  # ~3 in 4 of 40/s over 4 s
    assert (
        steps["note lifecycle 2/3: read"]
        == steps["note lifecycle 3/3: delete"]
        == steps["note lifecycle 1/3: create"]
    )
    bad = [(r["endpoint"], r["status"], r["error"]) for r in rows if not 200 <= r["status"] < 300]
    assert bad == []  # no 404 (a guessed or another worker's id), no step left unsent
    for name, status in zip(STEPS, (201, 200, 200), strict=True):
        own = [r for r in rows if r["endpoint"] == name]
        assert {r["status"] for r in own} == {status}
        assert all(r["done_s"] > r["intended_s"] for r in own)  # its own latency
    # a step is due when the previous answer came, so later than the flow's slot
    creates = sorted(r["intended_s"] for r in rows if r["endpoint"] == STEPS[0])
    deletes = sorted(r["intended_s"] for r in rows if r["endpoint"] == STEPS[2])
    assert all(d > c for c, d in zip(creates, deletes, strict=True))
    assert {r["worker"] for r in rows if r["endpoint"] in STEPS} - {None}  # workers named
