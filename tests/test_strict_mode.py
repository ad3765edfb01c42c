"""Strict mode: with ALLOCSTUDY_STRICT=1 a skip fails the suite, and says why it skipped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from studyrun import ROOT

_SKIPPING = """
import pytest

def test_needs_a_missing_part():
    pytest.skip("no chromium here (apt-get install chromium)")

def test_passes():
    assert True
"""


def _run(tmp_path: Path, strict: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_skipping.py").write_text(_SKIPPING)
    (folder / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (folder / "studyrun.py").write_text((ROOT / "tests" / "studyrun.py").read_text())
    env = {**os.environ, "ALLOCSTUDY_STRICT": strict}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=env,
    )


def test_a_skip_fails_the_suite_in_strict_mode_with_its_reason(tmp_path: Path) -> None:
    proc = _run(tmp_path, "1")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
    assert "the test skipped" in proc.stdout and "apt-get install chromium" in proc.stdout


def test_outside_strict_mode_a_skip_stays_a_skip(tmp_path: Path) -> None:
    proc = _run(tmp_path, "0")
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout
