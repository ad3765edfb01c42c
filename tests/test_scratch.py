"""Scratch folders are named for their maker; a killed maker's are swept, a live one's kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.scratch import scratch_dir, sweep_stale


def test_a_dead_makers_scratch_is_swept_and_a_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    gone = int(dead.stdout)
    (tmp_path / f"allocstudy-run-{gone}-abc").mkdir()
    (tmp_path / f"allocstudy-run-{gone}-abc" / "memory.arrow").write_bytes(b"x")
    (tmp_path / f"allocstudy-service-{gone}-x.log").write_text("log")
    mine = tmp_path / f"allocstudy-loadgen-{os.getpid()}-def"
    mine.mkdir()
    other = tmp_path / "allocstudy-QUIET"
    other.touch()
    removed = sweep_stale(tmp_path)
    assert sorted(p.name for p in removed) == [
        f"allocstudy-run-{gone}-abc",
        f"allocstudy-service-{gone}-x.log",
    ]
    assert mine.is_dir() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_a_scratch_folder_carries_its_makers_pid() -> None:
    folder = scratch_dir("run")
    try:
        assert folder.name.startswith(f"allocstudy-run-{os.getpid()}-")
    finally:
        folder.rmdir()
