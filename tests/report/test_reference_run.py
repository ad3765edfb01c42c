"""The reference run: a fresh clone's site renders the committed run; a local run takes over.

Real parts throughout: a `git clone` of this checkout and a real `mkdocs build` in it, the
session's real tiny run compacted by the repository's script.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from studyrun import ROOT
from synthetic_run import mkdocs_build

from bench.report.aggregate import aggregate
from bench.report.headline_table import headline_rows
from bench.report.runfolders import load_run, run_at
from bench.results.compact import REQUEST_COLUMNS_BLANKED
from bench.results.manifest import read_manifest
from bench.results.tables import read_table

pytestmark = pytest.mark.slow


def _committed_reference() -> Path:
    """The study folder of the reference run committed in the repository."""
    studies = [p for p in (ROOT / "reference").iterdir() if (p / "latest").is_file()]
    assert len(studies) >= 1, "reference/ holds no study with a `latest`"
    return studies[0]


def test_the_committed_reference_run_is_small_and_complete():
    study = _committed_reference()
    run = study / (study / "latest").read_text().strip()
    m = read_manifest(run)
    assert m["status"] == "complete" and m["reference"]["requests_kept"]
    assert not Path(m["spec_file"]).is_absolute()  # no path of the machine that made it
    assert not (run / "logs").exists()
    size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
    assert size < 5_000_000, size


def test_a_fresh_clone_builds_the_article_from_the_reference_run(tmp_path: Path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone / "results").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLOCSTUDY_")}
    env["PYTHONPATH"] = str(clone)  # the clone's own bench, as its `make setup` would install
    env["NO_MKDOCS_2_WARNING"] = "1"  # as the Makefile sets it
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "-q"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = _committed_reference()
    m = read_manifest(study / (study / "latest").read_text().strip())
    home = (clone / "site" / "index.html").read_text()
    assert "Reference run" in home
    assert f"the reference run of {m['host']['hostname']} ({m['host']['machine']}), " in home
    assert m["started"][:10] in home
    assert 'id="headline-table"' in home
    runs = (clone / "site" / "runs.html").read_text()
    assert "Reference runs" in runs and "shown: no local run exists" in runs


def test_a_local_run_takes_over_and_both_are_listed(tiny_run: Path, tmp_path: Path):
    proc = mkdocs_build(tmp_path / "site", tiny_run.parents[1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    home = (tmp_path / "site" / "index.html").read_text()
    assert "Reference run" not in home and tiny_run.name in home
    runs = (tmp_path / "site" / "runs.html").read_text()
    assert tiny_run.name in runs
    assert "Reference runs" in runs and "not shown: a local run takes over" in runs
    assert _committed_reference().name in runs


def test_compaction_keeps_every_number_the_article_reads(tiny_run: Path, tmp_path: Path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_reference.py"), str(tiny_run)]
        + ["--reference", str(tmp_path / "ref")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    small = Path(proc.stdout.strip().splitlines()[-1])
    assert small == tmp_path / "ref" / "tiny" / tiny_run.name
    assert (tmp_path / "ref" / "tiny" / "latest").read_text().strip() == tiny_run.name
    full, compact = load_run(run_at(tiny_run)), load_run(run_at(small))
    assert headline_rows(aggregate(compact)) == headline_rows(aggregate(full))
    assert compact.answers == full.answers and compact.idle == full.idle
    assert compact.memory == full.memory and compact.summary == full.summary
    kept = read_table(small / "requests.arrow", "requests")
    assert 0 < kept.num_rows <= read_table(tiny_run / "requests.arrow", "requests").num_rows
    for col in REQUEST_COLUMNS_BLANKED:  # what the article never reads is emptied
        assert kept[col].null_count == kept.num_rows
    assert not (small / "logs").exists()
    bad = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_reference.py"), str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("make_reference: ")
    assert "Traceback" not in bad.stderr


def test_make_site_builds_without_materials_mkdocs_2_notice():
    proc = subprocess.run(
        ["make", "--no-print-directory", "site"],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "NO_MKDOCS_2_WARNING"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "end of life" not in proc.stdout + proc.stderr  # the notice's first line
    assert "NO_MKDOCS_2_WARNING" not in proc.stdout + proc.stderr
    assert (ROOT / "site" / "index.html").is_file()
