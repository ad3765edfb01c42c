"""How `make test` shares the machine: under two pytest-xdist workers the tests that start a
study run on one worker, one after another, while the unit tests run on the other.

Proved on a suite of its own (the suite's conftest over stand-ins that note when and where
they ran), run the way the Makefile runs the real one, and in one process as plain `pytest`
runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from studyrun import copy_suite_conftest, makefile_xdist

_STUDY = """
import json, os, time
from pathlib import Path

import pytest

from bench.errors import UserError
from bench.measure.runlock import machine_lock

pytestmark = pytest.mark.real_run


@pytest.mark.parametrize("i", range(3))
def test_a_study(i):
    start = time.monotonic()
    try:
        with machine_lock():  # what `allocstudy run` takes first
            took = "lock"
    except UserError as refused:
        took = str(refused)
    time.sleep(0.4)
    with Path(os.environ["SUITE_LOG"]).open("a") as log:
        log.write(json.dumps({"kind": "study", "module": __name__, "start": start,
                              "end": time.monotonic(), "took": took,
                              "worker": os.environ.get("PYTEST_XDIST_WORKER")}) + "\\n")
"""

_UNIT = _STUDY.replace("pytestmark = pytest.mark.real_run", "").replace('"study"', '"unit"')


def _ran(tmp_path: Path, xdist: tuple[str, ...]) -> list[dict]:
    folder = tmp_path / "suite"
    folder.mkdir()
    for name in ("test_study_a", "test_study_b"):
        (folder / f"{name}.py").write_text(_STUDY)
    (folder / "test_unit.py").write_text(_UNIT)
    (folder / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers\nmarkers =\n    real_run: starts a study\n"
    )
    copy_suite_conftest(folder)
    log = tmp_path / "ran.jsonl"
    args = ["-q", "-p", "no:cacheprovider", *xdist, str(folder)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        capture_output=True, text=True, timeout=120, cwd=folder,
        env={**os.environ, "SUITE_LOG": str(log), "ALLOCSTUDY_STRICT": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "9 passed" in proc.stdout
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture(scope="module")
def in_workers(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The stand-in suite run as `make test` runs the real one (once for the module)."""
    return _ran(tmp_path_factory.mktemp("workers"), makefile_xdist())


@pytest.fixture(scope="module")
def in_one_process(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The stand-in suite run as plain `pytest` runs the real one."""
    return _ran(tmp_path_factory.mktemp("one"), ())


def test_studies_share_one_worker_one_at_a_time_beside_the_unit_tests(
    in_workers: list[dict],
) -> None:
    ran = in_workers
    studies = sorted((r for r in ran if r["kind"] == "study"), key=lambda r: r["start"])
    units = [r for r in ran if r["kind"] == "unit"]
    assert len(studies) == 6 and len(units) == 3
    assert len({r["worker"] for r in studies}) == 1 and studies[0]["worker"] is not None
    for before, after in zip(studies, studies[1:], strict=False):
        assert after["start"] >= before["end"], (before, after)  # never two at once
    # the unit tests ran on the other worker, while the studies ran
    assert {r["worker"] for r in units} != {studies[0]["worker"]}
    assert any(u["start"] < studies[-1]["end"] and u["end"] > studies[0]["start"] for u in units)


@pytest.mark.parametrize("suite", ["in_workers", "in_one_process"])
def test_a_study_started_by_a_test_off_the_machine_is_turned_away(
    suite: str, request: pytest.FixtureRequest
) -> None:
    """Only the tests on the machine may take the run lock: a unit test that starts a study by
    mistake fails at once instead of running now and then beside another study."""
    ran = request.getfixturevalue(suite)
    assert {r["took"] for r in ran if r["kind"] == "study"} == {"lock"}
    (refused,) = {r["took"] for r in ran if r["kind"] == "unit"}
    assert refused.startswith("cannot open the run lock") and "mark-it-real_run" in refused
