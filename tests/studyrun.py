"""Helpers shared by the suite: the repository root, the tiny spec, the CLI in a subprocess.

(A module of its own: every test folder has a conftest.py, so `from conftest import` would
pick whichever was imported first.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "TINY_SPEC", "TINY_SPEC_B", "run_cli"]

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
  churn:
    live_buffers: 400
    initial_buffers: 20
    alloc_per_call: 16
    long_lived_share: 0.3
    short_lifetime_s: 0.5
  payload: {max_items: 100}
control:
  threads: 2
  seconds: 1
  idle_s: 1
  repeats: 2
"""

#: TINY_SPEC with one allocator fewer and another rate: a second run that differs from the
#: first in its spec and its allocators, for comparisons (half the time of TINY_SPEC).
TINY_SPEC_B = TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc]").replace(
    "rate: 40", "rate: 50"
)
assert TINY_SPEC_B.count("[glibc]") == 1 and "rate: 50" in TINY_SPEC_B


def run_cli(
    *args: str, timeout: float = 600, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`allocstudy ARGS` in a fresh interpreter, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env=env,
    )
