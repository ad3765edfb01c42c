"""Session-wide fixtures: one real tiny study, run once and shared by every test that reads it.

The run uses real uvicorn workers, real preloaded allocators, the real memory cgroup (or the
procfs fallback) and the real C++ control: a few seconds per phase, two allocators.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from studyrun import TINY_SPEC, run_cli


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
