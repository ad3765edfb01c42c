"""`allocstudy run` under faults produced for real: a worker killed under load."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import time
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, BackgroundRun, our_processes, stray_cgroups

from bench.results.manifest import read_manifest
from bench.results.rundir import read_rows

pytestmark = pytest.mark.slow


def _no_core_dumps() -> None:
    """A worker killed by SIGSEGV would dump core into the project folder on some machines."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _workers(mark: str) -> list[int]:
    """The run's uvicorn workers (multiprocessing children of the supervisor)."""
    found = []
    for pid in our_processes(mark):
        with contextlib.suppress(OSError):
            if b"--multiprocessing-fork" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return sorted(found)


def _isolated(tmp_path: Path) -> dict[str, str]:
    """The run's environment: its temporary files and its journal in folders of the test."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {
        **os.environ,
        "TMPDIR": str(tmp),
        "ALLOCSTUDY_JOURNAL": str(tmp_path / "journal.json"),
    }


def _nothing_left(mark: str, cgroups_before: set[str], tmp_path: Path) -> None:
    deadline = time.monotonic() + 5
    while our_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_processes(mark) == []
    assert set(stray_cgroups()) == cgroups_before
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_worker_killed_under_load_fails_its_allocator_alone_and_keeps_what_it_measured(
    tmp_path: Path,
):
    spec = tmp_path / "crash.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 12"))
    out = tmp_path / "results"
    mark = f"{tmp_path.name}-crash"
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec),
        "--out",
        str(out),
        "--no-control",
        env_mark=mark,
        env=_isolated(tmp_path),
        preexec_fn=_no_core_dumps,
    )
    try:
        assert run.wait_for("glibc service: load", timeout=90), "".join(run.stderr)[-2000:]
        time.sleep(1)
        victim = _workers(mark)[0]
        os.kill(victim, signal.SIGSEGV)
        code, stdout, stderr = run.finish(timeout=120)
    finally:
        run.kill()
    assert code == 3, stderr[-2000:]
    assert "Traceback" not in stderr
    _nothing_left(mark, before, tmp_path)

    run_dir = Path(stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    glibc, jemalloc = m["allocators"]
    assert glibc["status"] == "failed"
    assert glibc["reason"].startswith(f"repeat 1: worker {victim} was killed by SIGSEGV ")
    assert f"glibc: failed: {glibc['reason']}" in stderr
    assert jemalloc["status"] == "ok", jemalloc["reason"]  # the next allocator still ran
    assert m["status"] == "complete"

    rows = read_rows(run_dir)
    (flagged,) = [r for r in rows["summary"] if r["allocator"] == "glibc"]
    assert flagged["flagged"] is True
    found = re.match(
        rf"worker {victim} was killed by SIGSEGV (\d+\.\d) s into the run \(load\)",
        flagged["flags"],
    )
    assert found, flagged["flags"]
    died_at = float(found.group(1))
    load = next(p for p in glibc["phases"]["service"] if p["phase"] == "load")
    assert load["start_s"] < died_at <= load["end_s"] + 0.1
    assert load["end_s"] - load["start_s"] < 8  # the repeat stopped at the death, not at 12 s
    memory = [r for r in rows["memory"] if r["allocator"] == "glibc"]
    assert {"start", "warmup", "load"} <= {r["phase"] for r in memory}
    assert max(r["t_s"] for r in memory) >= died_at  # kept up to the death, and a little on
    requests = [r for r in rows["requests"] if r["allocator"] == "glibc"]
    assert sum(r["phase"] == "load" for r in requests) > 0
    (fine,) = [r for r in rows["summary"] if r["allocator"] == "jemalloc"]
    assert "killed" not in (fine["flags"] or "")
