"""A run folder is publishable as it is: its files follow the umask, its spec is findable."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from bench.experiments.runner import PROJECT_ROOT, spec_file_record
from bench.results.tables import atomic_write_bytes


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
