"""Reproducible installs: the venv holds exactly what constraints.txt pins, a benchmark host's
install carries no site, browser or test tooling, and the article holds a run's versions
against the lock."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from studyrun import ROOT

from bench.report.lockcheck import check_lock, read_lock
from bench.results.manifest import read_manifest

LOCK = ROOT / "constraints.txt"


def _freeze(python: Path | str) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--exclude-editable", "--exclude", "allocstudy"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    pins = {}
    for line in out.splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version  # PEP 503, as read_lock
    return pins


def test_make_setup_installed_exactly_the_lock():
    assert _freeze(sys.executable) == read_lock(LOCK)


def test_the_service_stack_is_pinned():
    pins = read_lock(LOCK)
    for name in ("fastapi", "starlette", "uvicorn", "pydantic", "pydantic-core", "dask"):
        assert name in pins, name


def _reference_manifest() -> dict:
    study = next(p for p in (ROOT / "reference").iterdir() if (p / "latest").is_file())
    return read_manifest(study / (study / "latest").read_text().strip())


def test_the_article_says_whether_a_runs_versions_match_the_lock(tmp_path: Path):
    m = _reference_manifest()
    assert check_lock(m, [ROOT]).state == "match"
    lock = tmp_path / "constraints.txt"
    lock.write_text(
        LOCK.read_text().replace(f"fastapi=={m['libraries']['fastapi']}", "fastapi==0.110.0")
    )
    differ = check_lock(m, [tmp_path])
    assert differ.state == "differ"
    assert f"fastapi {m['libraries']['fastapi']} (the lock: 0.110.0)" in differ.detail
    assert check_lock({**m, "libraries": {}}, [ROOT]).state == "not recorded"
    assert check_lock(m, [tmp_path / "none"]).state == "no lock"


@pytest.mark.slow
def test_a_benchmark_host_installs_no_site_browser_or_test_tooling(tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "-c", str(LOCK), "-e", f"{ROOT}[cluster]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    installed = _freeze(py)
    for tooling in ("mkdocs", "mkdocs-material", "altair", "playwright", "pytest", "ruff"):
        assert tooling not in installed, tooling
    assert installed["fastapi"] == read_lock(LOCK)["fastapi"]
    assert "distributed" in installed
    # the harness works there: plan a study, and summarise a run without chart tooling
    spec = ROOT / "specs" / "quick.yaml"
    plan = subprocess.run(
        [str(py), "-m", "bench", "plan", str(spec), "--json"], capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr
    assert json.loads(plan.stdout)["total_s"] > 0
    study = next(p for p in (ROOT / "reference").iterdir() if (p / "latest").is_file())
    show = subprocess.run(
        [str(py), "-m", "bench", "show", str(study / "latest")], capture_output=True, text=True
    )
    assert show.returncode == 0, show.stderr
    assert "settled" in show.stdout
