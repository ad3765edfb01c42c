"""Session-wide fixtures: one real tiny study, run once and shared by every test that reads it.

The run uses real uvicorn workers, real preloaded allocators, the real memory cgroup (or the
procfs fallback) and the real C++ control: a few seconds per phase, two allocators.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY_SPEC = """\
name: tiny
title: A tiny study for the test suite
allocators: [glibc, jemalloc]
repeats: 1
service:
  workers: 2
  rate: 40
  warmup_s: 1
  load_s: 5
  idle_s: 3
  sample_interval_s: 0.25
  settle_window_s: 1
  churn: {live_buffers: 400, min_bytes: 4096, max_bytes: 65536, free_per_call: 16}
control:
  threads: 2
  seconds: 1
  idle_s: 1
  repeats: 2
"""


def run_cli(*args: str, timeout: float = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`allocstudy ARGS` in a fresh interpreter, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, timeout=timeout,
        cwd=cwd, stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY_SPEC)
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a complete real run of TINY_SPEC (service and control, two allocators)."""
    out = tmp_path_factory.mktemp("results")
    proc = run_cli("run", str(tiny_spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.is_dir() and run_dir.parent == out / "tiny"
    return run_dir
