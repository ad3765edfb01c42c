"""The typed manifest: a run made before the models loads, and dumps back to the same dict."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.results.manifest import (
    AllocatorRecord,
    Manifest,
    ManifestError,
    load_manifest,
    read_manifest,
)

ROOT = Path(__file__).resolve().parents[2]
#: The manifest of a real run made before the typed models (the reference run of 2026-12-05).
BEFORE = Path(__file__).resolve().parent / "fixtures" / "run-before-models"
REFERENCE = ROOT / "reference" / "quick"


@pytest.mark.parametrize("run", ["before", "reference"])
def test_a_real_run_loads_and_dumps_to_the_dict_the_report_reads(run: str):
    folder = BEFORE if run == "before" else REFERENCE / (REFERENCE / "latest").read_text().strip()
    typed = load_manifest(folder / "manifest.json")
    assert isinstance(typed, Manifest) and typed.allocators[0].name == "glibc"
    assert typed.model_dump(mode="json") == read_manifest(folder)


def test_a_synthetic_run_loads_and_dumps_to_the_same_dict(tmp_path: Path):
    sys.path.insert(0, str(ROOT / "tests" / "report"))
    try:
        from synthetic_run import write_run
    finally:
        sys.path.pop(0)
    run = write_run(tmp_path)
    assert load_manifest(run).model_dump(mode="json") == read_manifest(run)


def test_keys_only_some_runs_have_are_written_only_when_set():
    rec = AllocatorRecord.new(name="glibc")
    assert "memory_limit" not in rec.model_dump() and "version_by_host" not in rec.model_dump()
    rec.memory_limit = [{"repeat": 0}]
    assert rec.model_dump()["memory_limit"] == [{"repeat": 0}]
    m = Manifest.new(run_id="r", spec_name="s")
    assert not {"cells", "cluster", "hosts", "calibration"} & set(m.model_dump())


def test_a_manifest_whose_records_do_not_fit_names_the_key(tmp_path: Path):
    data = read_manifest(BEFORE)
    data["allocators"][0]["name"] = None
    (tmp_path / "manifest.json").write_text(__import__("json").dumps(data))
    with pytest.raises(ManifestError, match=r"allocators\.0\.name"):
        load_manifest(tmp_path)
