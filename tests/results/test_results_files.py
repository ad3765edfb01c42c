"""A run folder is publishable as it is: its files follow the umask, its spec is findable, and
a write cut short leaves every file whole."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from studyrun import ROOT

from bench.results.records import PROJECT_ROOT, spec_file_record
from bench.results.tables import atomic_write_bytes

#: In a child: a first save that fits, then a file-size limit, then a save too large for it.
CUT_SHORT = """
import resource, sys
from pathlib import Path
from bench.results.rundir import RunFolderError, save_run
run_dir = Path(sys.argv[1])
save_run(run_dir, {}, {"format": "2", "n": 0})
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))  # writes past it fail with EFBIG
try:
    save_run(run_dir, {}, {"format": "2", "pad": "x" * 100_000})
except RunFolderError as exc:
    print(exc)
"""


def test_written_files_follow_the_umask_not_the_temporary_files_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.arrow", b"data")
        os.umask(0o027)
        atomic_write_bytes(tmp_path / "b.arrow", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.arrow").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.arrow").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_manifest_names_its_spec_absolutely_and_within_the_project(tmp_path: Path) -> None:
    inside = spec_file_record(PROJECT_ROOT / "specs" / "quick.yaml")
    assert inside == {
        "spec_file_absolute": str(PROJECT_ROOT / "specs" / "quick.yaml"),
        "spec_file_project": "specs/quick.yaml",
    }
    outside = spec_file_record(tmp_path / "mine.yaml")
    assert outside["spec_file_project"] is None
    assert outside["spec_file_absolute"] == str((tmp_path / "mine.yaml").resolve())


def test_a_write_cut_short_leaves_the_last_manifest_whole_and_no_temporary_file(
    tmp_path: Path,
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CUT_SHORT, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        f"cannot write the results folder {tmp_path}: File too large; the run stopped; what it "
        "wrote before is kept (--resume continues it once the folder can be written)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "control.arrow",
        "manifest.json",
        "memory.arrow",
        "requests.arrow",
        "restarts.arrow",
        "summary.arrow",
    ]
    assert json.loads((tmp_path / "manifest.json").read_text()) == {"format": "2", "n": 0}
