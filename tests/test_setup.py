"""The set-up script: without root it names what is missing and how to install it, and stops."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from studyrun import ROOT


def test_setup_without_root_names_the_missing_package_and_the_command(tmp_path: Path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake_id = fake_bin / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")  # `id -u` of an ordinary user
    fake_id.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "ALLOCSTUDY_APT_EXTRA": "allocstudy-no-such-package",
    }
    proc = subprocess.run(
        ["bash", "scripts/setup.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert "missing system packages: allocstudy-no-such-package" in proc.stderr
    assert "sudo apt-get install -y allocstudy-no-such-package" in proc.stderr


def test_setup_is_idempotent_when_everything_is_there():
    proc = subprocess.run(
        ["bash", "scripts/setup.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert "installing" not in proc.stdout  # nothing left to do
