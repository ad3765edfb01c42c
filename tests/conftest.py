"""Session-wide fixtures and rules: one real tiny study, strict mode, a derandomized CI.

The run uses real uvicorn workers, real preloaded allocators, the real memory cgroup (or the
procfs fallback) and the real C++ control: a few seconds per phase, two allocators.

Strict mode (`ALLOCSTUDY_STRICT=1`, set by .ci/run) turns every skip into a failure that
keeps the skip's reason: a test that skips because chromium, a writable cgroup, a packaged
allocator or a compiler is missing has not exercised the real part, and CI must not be green
without it. Outside strict mode the skips stay, with their reasons in the summary (-ra).
With CI set, Hypothesis runs derandomized: the same examples every run, so a red CI is
reproducible and never a matter of luck.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from studyrun import TINY_SPEC, TINY_SPEC_B, run_cli

STRICT = os.environ.get("ALLOCSTUDY_STRICT", "") not in ("", "0")

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In strict mode a skipped test is a failed one, its skip reason kept as the message."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"strict mode (ALLOCSTUDY_STRICT=1): the test skipped: {reason}"


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY_SPEC)
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of a complete real run of TINY_SPEC (service and control, two allocators).

    With --wait: on a shared machine another run may hold it, and this run starts after it
    rather than failing the session (the run lock's exit 4).
    """
    out = tmp_path_factory.mktemp("results")
    proc = run_cli("run", str(tiny_spec), "--out", str(out), "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.is_dir() and run_dir.parent == out / "tiny"
    return run_dir


@pytest.fixture(scope="session")
def tiny_run_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second real run, of TINY_SPEC_B (one allocator, another rate), in its own results
    folder: what a comparison of two runs made from different specs needs."""
    spec = tmp_path_factory.mktemp("spec_b") / "tiny.yaml"
    spec.write_text(TINY_SPEC_B)
    out = tmp_path_factory.mktemp("results_b")
    proc = run_cli("run", str(spec), "--out", str(out), "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.is_dir() and run_dir.parent == out / "tiny"
    return run_dir
