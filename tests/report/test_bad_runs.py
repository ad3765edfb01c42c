"""Bad result files under a real `mkdocs build`: one line naming the file, or left out.

A truncated or garbage table, a table of another format version, a manifest that is not JSON
or has no `format`: the build fails with one line that names the file and the problem, never a
traceback. With `skip_bad_runs: true` the other runs still get their pages and each run left
out is named once, in the log and on the runs page.
"""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow.feather as feather
import pytest
from synthetic_run import REPO, mkdocs_build, write_run

RUN_ID = "20261125T180000Z-quick"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 3 // 5])  # a copy cut short, as a full disk leaves it


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(path.stat().st_size))


def _format_1(path: Path) -> None:
    table = feather.read_table(path)
    meta = dict(table.schema.metadata or {})
    meta[b"allocstudy.format"] = b"1"
    feather.write_feather(table.replace_schema_metadata(meta), path)


def _not_json(path: Path) -> None:
    path.write_text(path.read_text()[:200])


def _no_format(path: Path) -> None:
    manifest = json.loads(path.read_text())
    del manifest["format"]
    path.write_text(json.dumps(manifest))


BAD_FILES: list[tuple[str, Callable[[Path], None], str]] = [
    ("memory.arrow", _truncate, "not a readable Arrow file, truncated or damaged"),
    ("requests.arrow", _garbage, "not a readable Arrow file, truncated or damaged"),
    ("summary.arrow", _format_1, "format version 1 is not the supported 2"),
    ("manifest.json", _not_json, "not a readable JSON manifest"),
    ("manifest.json", _no_format, "no `format` key"),
]


def _lines_naming(output: str, path: Path) -> list[str]:
    return [line for line in output.splitlines() if str(path) in line]


@pytest.mark.parametrize(
    ("name", "damage", "problem"), BAD_FILES, ids=[d.__name__[1:] for _, d, _ in BAD_FILES]
)
def test_a_bad_file_fails_the_build_with_one_line_naming_it(
    tmp_path: Path, results: Path, name: str, damage: Callable[[Path], None], problem: str
) -> None:
    bad = results / "quick" / RUN_ID / name
    damage(bad)
    proc = mkdocs_build(tmp_path / "site", results)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in output
    lines = _lines_naming(output, bad)
    assert len(lines) == 1, output
    assert "ERROR" in lines[0] and problem in lines[0] and "skip_bad_runs: true" in lines[0]


def _config_skipping_bad_runs(tmp_path: Path) -> Path:
    """The project's mkdocs.yml with `skip_bad_runs: true` (and its docs_dir made absolute)."""
    text = (REPO / "mkdocs.yml").read_text()
    text = text.replace("docs_dir: docs", f"docs_dir: {REPO / 'docs'}")
    text = text.replace(
        "default_study: default", "default_study: default\n      skip_bad_runs: true"
    )
    assert "skip_bad_runs" in text and str(REPO / "docs") in text
    config = tmp_path / "mkdocs.yml"
    config.write_text(text)
    return config


def test_skip_bad_runs_builds_the_good_runs_and_names_each_one_left_out(tmp_path: Path) -> None:
    results = tmp_path / "results"
    good = write_run(results)
    older = good.with_name("20261120T090000Z-quick")  # an older run of the same study
    shutil.copytree(good, older)
    _not_json(older / "manifest.json")
    bad = write_run(
        results,
        spec_name="default",
        run_id="20261124T100000Z-default",
        started="2026-11-24T10:00:00+00:00",
    )
    _truncate(bad / "memory.arrow")
    site = tmp_path / "site"
    proc = mkdocs_build(
        site, results, config=_config_skipping_bad_runs(tmp_path), strict=True, quiet=False
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    for run, file in ((bad, "memory.arrow"), (older, "manifest.json")):
        lines = _lines_naming(output, run)
        assert len(lines) == 1, output
        assert "INFO" in lines[0] and "left out the run" in lines[0] and file in lines[0]
    home = (site / "index.html").read_text()
    assert RUN_ID in home  # the default study is left out, so quick is the home page
    assert not (site / "studies" / "default.html").exists()
    runs = (site / "runs.html").read_text()
    assert "Runs left out" in runs
    assert "default/20261124T100000Z-default" in runs and "quick/20261120T090000Z-quick" in runs
    assert "memory.arrow: not a readable Arrow file" in runs


def test_without_skip_bad_runs_a_bad_older_run_still_fails_the_build(
    tmp_path: Path, results: Path
) -> None:
    older = results / "quick" / "20261120T090000Z-quick"
    shutil.copytree(results / "quick" / RUN_ID, older)
    _no_format(older / "manifest.json")
    proc = mkdocs_build(tmp_path / "site", results)
    assert proc.returncode != 0
    assert len(_lines_naming(proc.stdout + proc.stderr, older / "manifest.json")) == 1
