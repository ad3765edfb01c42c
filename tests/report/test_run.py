"""Finding studies and runs: `latest` as a symlink or a file, fallbacks, format checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_run import write_run

from bench.report.errors import ReportError
from bench.report.runfolders import check_freshness, find_studies, load_run


def test_no_results_folder_means_no_studies(tmp_path: Path):
    assert find_studies(tmp_path / "missing") == []
    assert find_studies(tmp_path) == []


def test_latest_as_a_symlink(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, run_id="20261125T100000Z-quick", started="2026-11-25T10:00:00+00:00")
    write_run(r, run_id="20261125T090000Z-quick", started="2026-11-25T09:00:00+00:00")
    (study,) = find_studies(r)
    assert study.current.run_id == "20261125T090000Z-quick"  # latest names it, not the newest
    assert study.chosen_by == "latest"
    assert [x.run_id for x in study.runs] == ["20261125T100000Z-quick", "20261125T090000Z-quick"]


def test_latest_as_a_text_file(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, run_id="20261125T100000Z-quick", latest="file")
    (study,) = find_studies(r)
    assert study.current.run_id == "20261125T100000Z-quick"
    assert (r / "quick" / "latest").is_file() and not (r / "quick" / "latest").is_symlink()


def test_without_latest_the_newest_complete_run_is_shown(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, run_id="a-old", started="2026-11-25T09:00:00+00:00", latest=None)
    write_run(
        r, run_id="b-new", started="2026-11-25T10:00:00+00:00", latest=None, status="incomplete"
    )
    (study,) = find_studies(r)
    assert study.current.run_id == "a-old" and study.chosen_by == "newest complete run"


def test_latest_naming_a_missing_run_is_an_error(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, latest=None)
    (r / "quick" / "latest").write_text("gone\n")
    with pytest.raises(ReportError, match="names run 'gone'"):
        find_studies(r)


def test_unknown_manifest_format_is_refused(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    m = json.loads((run / "manifest.json").read_text())
    m["format"] = "9"
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ReportError, match="manifest format 9"):
        find_studies(r)


def test_a_table_of_another_kind_is_refused(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    (run / "summary.arrow").write_bytes((run / "control.arrow").read_bytes())
    (study,) = find_studies(r)
    with pytest.raises(ReportError, match="expected 'summary'"):
        load_run(study.current)


def test_missing_control_table_is_allowed(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    (run / "control.arrow").unlink()
    (study,) = find_studies(r)
    loaded = load_run(study.current)
    assert loaded.control == [] and "control" not in loaded.files


def test_freshness_current_stale_and_unknown(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    manifest = json.loads((run / "manifest.json").read_text())
    assert check_freshness(manifest, [tmp_path]).state == "current"
    spec = tmp_path / "specs" / "quick.yaml"
    spec.write_text(spec.read_text().replace("repeats: 1", "repeats: 2"))
    stale = check_freshness(manifest, [tmp_path])
    assert stale.state == "stale" and "changed after this run" in stale.detail
    spec.unlink()
    gone = check_freshness(manifest, [tmp_path])
    assert gone.state == "unknown" and "no longer exists" in gone.detail


def test_a_moved_results_folder_still_finds_its_spec_by_its_project_path(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["spec_file"] = "/a/checkout/that/is/gone/specs/quick.yaml"  # the old machine's
    manifest["spec_file_project"] = "specs/quick.yaml"
    assert check_freshness(manifest, [tmp_path]).state == "current"
    del manifest["spec_file_project"]
    assert check_freshness(manifest, [tmp_path]).state == "unknown"
