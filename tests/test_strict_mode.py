"""Strict mode: with ALLOCSTUDY_STRICT on, a skip fails the suite and says why it skipped,
whether it happened inside a test or at collection; the variable takes on or off, nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from studyrun import ROOT, copy_suite_conftest, makefile_xdist

_SKIPPING = """
import pytest

def test_needs_a_missing_part():
    pytest.skip("no chromium here (apt-get install chromium)")

def test_passes():
    assert True
"""

_SKIPPED_AT_COLLECTION = """
import pytest

pytest.importorskip("no_such_module_here", reason="no_such_module_here is not installed")

def test_never_collected():
    assert True
"""


def _run(
    tmp_path: Path, strict: str, skipped_module: bool = False, xdist: bool = False
) -> subprocess.CompletedProcess[str]:
    """The suite's conftest over the skipping module (and one skipped whole), in a pytest of
    its own, in one process or in xdist workers as `make test` runs it."""
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_skipping.py").write_text(_SKIPPING)
    if skipped_module:
        (folder / "test_collection.py").write_text(_SKIPPED_AT_COLLECTION)
    copy_suite_conftest(folder)
    env = {**os.environ, "ALLOCSTUDY_STRICT": strict}
    args = ["-q", "-p", "no:cacheprovider", *(makefile_xdist() if xdist else ()), str(folder)]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=folder,
        env=env,
    )


@pytest.mark.parametrize("on", ["1", "Yes"])  # and true: the same lowered comparison
def test_a_skip_fails_the_suite_in_strict_mode_with_its_reason(tmp_path: Path, on: str) -> None:
    proc = _run(tmp_path, on)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
    assert "the test skipped" in proc.stdout and "apt-get install chromium" in proc.stdout


@pytest.mark.parametrize("off", ["false", ""])  # and 0, no
def test_outside_strict_mode_a_skip_stays_a_skip(tmp_path: Path, off: str) -> None:
    proc = _run(tmp_path, off)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout


def test_a_value_neither_on_nor_off_is_refused_in_one_line(tmp_path: Path) -> None:
    proc = _run(tmp_path, "maybe")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "ERROR: ALLOCSTUDY_STRICT='maybe' is neither on (1, true, yes) nor off "
        "(0, false, no, or unset)"
    ]


@pytest.mark.parametrize("xdist", [False, True], ids=["one-process", "xdist"])
def test_a_module_skipped_at_collection_fails_strict_mode_naming_it(
    tmp_path: Path, xdist: bool
) -> None:
    proc = _run(tmp_path, "1", skipped_module=True, xdist=xdist)
    assert proc.returncode != 0, proc.stdout
    assert "test_collection.py was skipped at collection, none of its tests ran" in proc.stdout
    assert "no_such_module_here is not installed" in proc.stdout
    assert "1 error" in proc.stdout


def test_a_skip_inside_a_test_fails_strict_mode_in_xdist_workers_too(tmp_path: Path) -> None:
    proc = _run(tmp_path, "1", xdist=True)
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed" in proc.stdout
    assert "the test skipped" in proc.stdout and "apt-get install chromium" in proc.stdout


def test_outside_strict_mode_a_module_skipped_at_collection_stays_skipped(tmp_path: Path) -> None:
    proc = _run(tmp_path, "0", skipped_module=True)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 2 skipped" in proc.stdout


def test_the_cluster_tests_without_dask_fail_strict_collection(tmp_path: Path) -> None:
    """The suite's own module-level importorskip, with `distributed` made unimportable (as
    when it is not installed: importorskip skips on ModuleNotFoundError only)."""
    hide = tmp_path / "no-dask"
    (hide / "distributed").mkdir(parents=True)
    (hide / "distributed" / "__init__.py").write_text(
        "raise ModuleNotFoundError('no distributed here', name='distributed')\n"
    )
    env = {
        **os.environ,
        "ALLOCSTUDY_STRICT": "1",
        "PYTHONPATH": f"{hide}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    module = ROOT / "tests" / "experiments" / "test_cluster_run.py"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
         str(module)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.returncode != 0, proc.stdout
    assert "test_cluster_run.py was skipped at collection" in proc.stdout
    assert "dask[distributed] is not installed" in proc.stdout
