"""Session-wide fixtures and rules: one real tiny study, strict mode, a derandomized CI, and a
run lock of the suite's own.

The run uses real uvicorn workers, real preloaded allocators, the real memory cgroup (or the
procfs fallback) and the real C++ control: a few seconds per phase, two allocators.

`make test` runs the suite in two pytest-xdist workers: the tests that start or read a study
all go to one of them and run there one at a time (no two studies ever measure at once), the
unit tests to the other, so the studies' waiting no longer holds the rest up. Plain `pytest`
runs everything in one process, the studies last. Either way a study started by a test not
marked for the machine fails at once (tests/machinegroup.py).

Strict mode (`ALLOCSTUDY_STRICT=1`, `true` or `yes`; .ci/run sets it) turns every skip into a
failure that keeps the skip's reason: a skip inside a test, and a skip at collection (a
module-level `pytest.importorskip`, which would otherwise remove a whole module silently). A
test that skips because chromium, a writable cgroup, Dask, a packaged allocator or a compiler
is missing, or because its premise does not hold here (studyrun.premise), has not exercised
the real part, and CI must not be green without it. `0`, `false`, `no` or nothing leave it
off; any other value is refused in one line, so a typo never decides what CI checks. Outside
strict mode the skips stay, with their reasons in the summary (-ra).

With CI set, Hypothesis runs derandomized: the same examples every run, so a red CI is
reproducible and never a matter of luck.

The runs the suite starts hold a lock of their own ($ALLOCSTUDY_LOCK, set here for the
session): a study measuring on the machine neither makes them wait nor turns them away with
exit 4, and the lock tests see only the suite's runs. When a study holds the machine's lock
the suite says so in one line as it starts, since each then disturbs the other's timings.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from machinegroup import MachineGroup, on_the_machine, reading_modules, worker
from studyrun import MACHINE_LOCK, ROOT, TINY_SPEC, TINY_SPEC_B, run_cli

from bench.measure.runlock import held_by

STRICT_ON, STRICT_OFF = ("1", "true", "yes"), ("", "0", "false", "no")
_STRICT_RAW = os.environ.get("ALLOCSTUDY_STRICT", "")
STRICT = _STRICT_RAW.strip().lower() in STRICT_ON

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

_LOCK_FOLDER = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Refuse an ALLOCSTUDY_STRICT that is neither on nor off; give the suite its run lock."""
    if _STRICT_RAW.strip().lower() not in STRICT_ON + STRICT_OFF:
        raise pytest.UsageError(
            f"ALLOCSTUDY_STRICT={_STRICT_RAW!r} is neither on (1, true, yes) nor off "
            "(0, false, no, or unset)"
        )
    folder = tempfile.mkdtemp(prefix="allocstudy-suite-")
    config.stash[_LOCK_FOLDER] = folder
    os.environ["ALLOCSTUDY_LOCK"] = str(Path(folder) / "run.lock")
    config.pluginmanager.register(MachineGroup(Path(folder)), "allocstudy-machine-group")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(_SESSION_RUN, None)
    if run is not None:
        run.stop()  # a session cut short (-x, Ctrl-C) does not leave it running
    folder = config.stash.get(_LOCK_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_sessionstart(session: pytest.Session) -> None:
    """One line when a study holds the machine: the suite's runs will share the CPU with it."""
    holder = held_by(MACHINE_LOCK)
    if holder is not None:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        line = (
            f"allocstudy: a run holds this machine ({MACHINE_LOCK}: {holder}); the suite's "
            "runs take their own lock and do not wait for it, but each disturbs the other's "
            "timings"
        )
        if reporter is not None:
            reporter.write_line(line, yellow=True)


def _strict_reason(longrepr: object) -> object:
    """The reason of a skip report (its longrepr is (path, line, reason))."""
    return longrepr[2] if isinstance(longrepr, tuple) else longrepr


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In strict mode a skipped test is a failed one, its skip reason kept as the message."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        reason = _strict_reason(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"strict mode (ALLOCSTUDY_STRICT): the test skipped: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """In strict mode a module skipped at collection (a module-level importorskip) fails,
    named with its reason: otherwise its tests vanish and the run still exits 0."""
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped:
        reason = _strict_reason(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"strict mode (ALLOCSTUDY_STRICT): {collector.nodeid} was skipped at collection, "
            f"none of its tests ran: {reason}"
        )


class _SessionRun:
    """The session's real run of TINY_SPEC, started in the background as soon as the tests
    are collected: its phases are mostly waiting, so the unit tests run meanwhile, and the
    tests that read it run last (pytest_collection_modifyitems)."""

    def __init__(self, folder: Path) -> None:
        self.spec = folder / "spec" / "tiny.yaml"
        self.spec.parent.mkdir()
        self.spec.write_text(TINY_SPEC)
        self.out = folder / "results"
        self.log = folder / "run.err"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "wb") as err, open(self.log.with_suffix(".out"), "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench", "run", str(self.spec), "--out", str(self.out)],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            )  # fmt: skip

    def finish(self) -> Path:
        """The run's folder, once it has ended (exit 0)."""
        if self.proc is None:
            self.start()
        assert self.proc is not None
        code = self.proc.wait(timeout=600)
        assert code == 0, self.log.read_text()[-3000:]
        stdout = self.log.with_suffix(".out").read_text()
        run_dir = Path(stdout.strip().splitlines()[-1])
        assert run_dir.is_dir() and run_dir.parent == self.out / "tiny"
        return run_dir

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the run's own clean-up: THP, cgroups
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()


_SESSION_RUN = pytest.StashKey[_SessionRun]()


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected what they do
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the tests, and start the session's real run when a test reads it.

    In one process the tests run in three groups, each in its own order: first those that
    start no study (they run while the session's run measures in the background), then the
    modules that read the session's run, then the other modules marked `real_run`. Under
    xdist the tests on the machine come first instead (xdist hands out work in this order, so
    their worker starts on them at once), and the session's run starts when its first reader
    asks for it, in that worker: started at collection it would run in both."""
    reading = reading_modules(items)
    in_worker = worker(config)

    def group(item: pytest.Item) -> int:
        if getattr(item, "module", None) in reading:
            return 1
        if on_the_machine(item, reading):
            return 2
        return 3 if in_worker else 0

    items.sort(key=group)  # stable: each group keeps the order it was collected in
    if reading and not config.option.collectonly:
        run = _SessionRun(Path(config.stash[_LOCK_FOLDER]))
        config.stash[_SESSION_RUN] = run
        if not in_worker:
            run.start()


@pytest.fixture(scope="session")
def tiny_spec(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """TINY_SPEC as a file: the session run's own when there is one."""
    run = pytestconfig.stash.get(_SESSION_RUN, None)
    if run is not None:
        return run.spec
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(TINY_SPEC)
    return path


@pytest.fixture(scope="session")
def tiny_run(pytestconfig: pytest.Config) -> Path:
    """The folder of a complete real run of TINY_SPEC (service and control, two allocators),
    started in the background when the tests were collected."""
    return pytestconfig.stash[_SESSION_RUN].finish()


@pytest.fixture(scope="session")
def tiny_run_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second real run, of TINY_SPEC_B (one allocator, another rate), in its own results
    folder: what a comparison of two runs made from different specs needs."""
    spec = tmp_path_factory.mktemp("spec_b") / "tiny.yaml"
    spec.write_text(TINY_SPEC_B)
    out = tmp_path_factory.mktemp("results_b")
    proc = run_cli("run", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert run_dir.is_dir() and run_dir.parent == out / "tiny"
    return run_dir
