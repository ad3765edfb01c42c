"""The journal: what a killed run left changed is put back by the next `doctor` or run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from studyrun import run_cli

from bench.measure.groups import PREFIX, cgroup_support
from bench.measure.journal import _boot_id


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _entry(kind: str, target: Path, original: str | None, pid: int, boot: str = "") -> dict:
    return {
        "kind": kind,
        "target": str(target),
        "original": original,
        "pid": pid,
        "boot_id": boot or _boot_id(),
        "time": 0,
    }


@pytest.mark.machine  # its stale cgroup is one a study's test would count as left behind
def test_doctor_restore_puts_back_what_a_dead_run_changed_and_keeps_a_live_runs(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal.json"
    left, live, old_boot = (tmp_path / n for n in ("left", "live", "old-boot"))
    for setting in (left, live, old_boot):
        setting.write_text("never")
    dead = _dead_pid()
    entries = [
        _entry("setting", left, "madvise", dead),
        _entry("setting", live, "always", os.getpid()),  # this test runs: its run is alive
        _entry("setting", old_boot, "always", dead, boot="another-boot"),
    ]
    support = cgroup_support()
    stale = None
    if support.parent is not None:
        stale = support.parent / f"{PREFIX}stale-test-{tmp_path.name[-8:]}"
        stale.mkdir()
        entries.append(_entry("cgroup", stale, None, dead))
    journal.write_text(json.dumps(entries))
    env = {**os.environ, "ALLOCSTUDY_JOURNAL": str(journal)}
    proc = run_cli("doctor", "--restore", env=env)
    assert proc.returncode == 0, proc.stderr
    assert left.read_text() == "madvise"
    assert f"restored {left} to 'madvise', left changed by run pid {dead}" in proc.stderr
    assert live.read_text() == "never" and old_boot.read_text() == "never"
    if stale is not None:
        assert not stale.exists() and f"removed the cgroup {stale}" in proc.stderr
    remaining = json.loads(journal.read_text())
    assert [e["target"] for e in remaining] == [str(live)]
    again = run_cli("doctor", "--restore", env=env)
    assert again.returncode == 0 and again.stderr == ""  # nothing left to say


def test_a_torn_journal_is_read_as_empty_not_a_traceback(tmp_path: Path) -> None:
    journal = tmp_path / "journal.json"
    journal.write_text('[{"kind": "setting", "tar')
    proc = run_cli("doctor", "--restore", env={**os.environ, "ALLOCSTUDY_JOURNAL": str(journal)})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert json.loads(journal.read_text()) == []
