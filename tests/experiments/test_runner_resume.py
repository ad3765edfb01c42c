"""`allocstudy run --resume` of real interrupted runs: what it keeps, and what it refuses."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from studyrun import TINY_SPEC, BackgroundRun, run_cli

from bench.results.manifest import ManifestError, read_manifest
from bench.results.resume import spec_changes
from bench.results.rundir import read_rows

pytestmark = pytest.mark.real_run

#: What identifies a row of each table: no two rows of a run may share it.
ROW_KEYS = {
    "memory": ("experiment", "allocator", "repeat", "t_s"),
    "requests": ("allocator", "repeat", "phase", "endpoint", "intended_s"),
    "summary": ("experiment", "allocator", "repeat"),
    "control": ("allocator", "repeat"),
}


def _interrupt_when(run: BackgroundRun, ready: Any, timeout: float = 120) -> tuple[int, str, str]:
    """SIGINT the run once `ready()` is true (the run must not finish first)."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert run.proc.poll() is None, "".join(run.stderr)[-2000:]
            assert time.monotonic() < deadline, "".join(run.stderr)[-2000:]
            time.sleep(0.2)
        os.killpg(run.proc.pid, signal.SIGINT)
        return run.finish(timeout=60)
    finally:
        run.kill()


def _statuses(out: Path) -> dict[str, str]:
    with contextlib.suppress(ManifestError, ValueError):
        for run_dir in (out / "tiny").glob("*/"):
            return {a["name"]: a["status"] for a in read_manifest(run_dir)["allocators"]}
    return {}


def _rows_of(rows: dict[str, list[dict[str, Any]]], allocator: str) -> dict[str, list[Any]]:
    return {name: [r for r in table if r["allocator"] == allocator] for name, table in rows.items()}


@pytest.mark.slow  # 22 s; --resume of a killed run: test_runner_faults
def test_resume_after_a_real_interrupt_keeps_the_finished_allocator_and_measures_the_rest(
    tmp_path: Path,
):
    spec = tmp_path / "r.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 3"))
    out = tmp_path / "results"
    run = BackgroundRun(str(spec), "--out", str(out), "--no-control", env_mark=tmp_path.name)
    # glibc runs first and is done; jemalloc's load is under way when Ctrl-C comes
    code, stdout, stderr = _interrupt_when(
        run,
        lambda: (
            _statuses(out).get("glibc") == "ok"
            and any("jemalloc service: load" in line for line in run.stderr)
        ),
    )
    assert code == 130, stderr[-2000:]
    run_dir = Path(stdout.strip().splitlines()[-1])
    interrupted = read_manifest(run_dir)
    assert interrupted["status"] == "incomplete"
    assert [(a["name"], a["status"]) for a in interrupted["allocators"]] == [
        ("glibc", "ok"),
        ("jemalloc", "incomplete"),
    ]
    before = read_rows(run_dir)
    assert _rows_of(before, "jemalloc")["memory"]  # the interrupted repeat's samples are kept
    glibc_before = _rows_of(before, "glibc")
    assert glibc_before["summary"] and glibc_before["requests"]

    resumed = run_cli("run", str(spec), "--out", str(out), "--resume", "--no-control")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert Path(resumed.stdout.strip().splitlines()[-1]) == run_dir
    assert "glibc: kept from the interrupted run (ok)" in resumed.stderr
    after = read_rows(run_dir)
    assert _rows_of(after, "glibc") == glibc_before  # byte for byte what it measured
    for name, key in ROW_KEYS.items():
        counts = collections.Counter(tuple(r[k] for k in key) for r in after[name])
        assert [k for k, n in counts.items() if n > 1] == [], name
    jemalloc = _rows_of(after, "jemalloc")
    assert len(jemalloc["summary"]) == 1  # measured again, whole; the partial repeat dropped
    phases = [r["phase"] for r in jemalloc["memory"]]
    assert phases.count("start") < len(phases) and "idle" in phases
    times = [r["t_s"] for r in jemalloc["memory"]]
    assert times == sorted(times)  # one repeat's samples, not two interleaved
    m = read_manifest(run_dir)
    assert m["status"] == "complete"
    assert [a["status"] for a in m["allocators"]] == ["ok", "ok"]
    assert m["allocators"][0] == interrupted["allocators"][0]  # its record untouched
    assert (out / "tiny" / "latest").resolve() == run_dir.resolve()


def test_resume_of_a_run_whose_spec_changed_is_refused_with_what_changed(tmp_path: Path):
    spec = tmp_path / "r.yaml"
    spec.write_text(TINY_SPEC)
    out = tmp_path / "results"
    run = BackgroundRun(str(spec), "--out", str(out), "--no-control", env_mark=tmp_path.name)
    code, stdout, stderr = _interrupt_when(run, lambda: "glibc" in _statuses(out))
    assert code == 130, stderr[-2000:]
    run_dir = Path(stdout.strip().splitlines()[-1])
    manifest_before = (run_dir / "manifest.json").read_bytes()

    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 7").replace("rate: 40", "rate: 50"))
    refused = run_cli("run", str(spec), "--out", str(out), "--resume", "--no-control")
    assert refused.returncode == 2, refused.stderr[-2000:]
    # what a run killed by an earlier test left changed on the machine is put back first, in
    # lines of its own (bench.measure.journal); the refusal is the one line after them
    said = [line for line in refused.stderr.splitlines() if "by run pid" not in line]
    assert said == [
        f"allocstudy: cannot resume {run_dir}: its spec has changed since it ran (spec file "
        f"{spec.resolve()}): service.rate was 40.0, now 50.0; service.load_s was 5.0, now 7.0. "
        "Put the spec back to resume it, or run without --resume to start a new run"
    ]
    assert (run_dir / "manifest.json").read_bytes() == manifest_before
    assert [p.name for p in (out / "tiny").iterdir()] == [run_dir.name]  # no new run either


def test_spec_changes_name_each_changed_key_by_its_path():
    old = {"name": "a", "service": {"rate": 40, "churn": {"seed": 1}}, "allocators": ["glibc"]}
    new = {"name": "a", "service": {"rate": 40, "churn": {"seed": 2}}, "allocators": [], "x": 1}
    assert spec_changes(old, new) == [
        "service.churn.seed was 1, now 2",
        'allocators was ["glibc"], now []',
        "x was (not set), now 1",
    ]
    assert spec_changes(old, old) == []
