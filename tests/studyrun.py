"""Helpers shared by the suite: the repository root, the tiny spec, the CLI in a subprocess,
a run in the background, and what a run may leave behind (processes, cgroups).

(A module of its own: every test folder has a conftest.py, so `from conftest import` would
pick whichever was imported first.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.measure.runlock import lock_path

__all__ = [
    "MACHINE_LOCK",
    "ROOT",
    "TINY_SPEC",
    "TINY_SPEC_B",
    "BackgroundRun",
    "copy_suite_conftest",
    "makefile_xdist",
    "our_processes",
    "premise",
    "premise_cgroups",
    "premise_thp_was_changed",
    "run_cli",
    "stray_cgroups",
]

ROOT = Path(__file__).resolve().parents[1]


def copy_suite_conftest(folder: Path) -> None:
    """The suite's conftest and the helpers it imports, copied into `folder`: a pytest of its
    own over stand-in tests there runs under the suite's rules."""
    for name in ("conftest.py", "studyrun.py", "machinegroup.py"):
        (folder / name).write_text((ROOT / "tests" / name).read_text())


def makefile_xdist() -> tuple[str, ...]:
    """The pytest-xdist options `make test` runs the suite with (the Makefile's XDIST)."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("XDIST :="):
            return tuple(line.split(":=", 1)[1].split())
    raise AssertionError("the Makefile sets no XDIST")


#: The machine's run lock, as it was before the suite pointed its own runs elsewhere
#: (conftest sets $ALLOCSTUDY_LOCK for the session; this module is imported first).
MACHINE_LOCK = lock_path()

TINY_SPEC = """\
name: tiny
title: A tiny study for the test suite
allocators: [glibc, jemalloc]
repeats: 1
service:
  workers: 2
  rate: 40
  warmup_s: 1
  load_s: 5
  idle_s: 3
  sample_interval_s: 0.25
  settle_window_s: 1
  churn:
    live_buffers: 400
    initial_buffers: 20
    alloc_per_call: 16
    long_lived_share: 0.3
    short_lifetime_s: 0.5
  payload: {max_items: 100}
control:
  threads: 2
  seconds: 1
  idle_s: 1
  repeats: 2
"""

#: TINY_SPEC with one allocator fewer and another rate: a second run that differs from the
#: first in its spec and its allocators, for comparisons (half the time of TINY_SPEC).
TINY_SPEC_B = TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc]").replace(
    "rate: 40", "rate: 50"
)
assert TINY_SPEC_B.count("[glibc]") == 1 and "rate: 50" in TINY_SPEC_B


def run_cli(
    *args: str, timeout: float = 600, cwd: Path = ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`allocstudy ARGS` in a fresh interpreter, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env=env,
    )


class BackgroundRun:
    """`allocstudy run ARGS` in its own session, its output read as it comes.

    `env_mark` is put in the environment of the run (and so of every process it starts), for
    our_processes to find them all.
    """

    def __init__(
        self,
        *args: str,
        env_mark: str,
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench", "run", *args],
            cwd=ROOT,
            env={**(env or os.environ), "ALLOCSTUDY_TEST_MARK": env_mark},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            into.append(line)

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once a line of stderr contains `text`; False after `timeout` s or an exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.stderr):
                return True
            if self.proc.poll() is not None:
                return any(text in line for line in self.stderr)
            time.sleep(0.1)
        return False

    def finish(self, timeout: float) -> tuple[int, str, str]:
        """Wait for the run to end: its exit code, stdout and stderr."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code, "".join(self.stdout), "".join(self.stderr)

    def kill(self) -> None:
        """SIGKILL the whole session, if it still runs (a safety net for failed tests)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()


def premise(holds: bool, reason: str) -> None:
    """Stop a test whose premise does not hold on this machine, saying which.

    A check like `if during != before: ...` or `all()` over an empty set passes without
    checking anything when THP is already `never` or there are no cgroups. Such a test skips
    here with the reason instead, and strict mode (conftest) turns that skip into a failure:
    CI cannot pass a check it never made.
    """
    if not holds:
        import pytest

        pytest.skip(f"the test's premise does not hold here: {reason}")


def premise_thp_was_changed(before: str | None) -> None:
    """The premise of a check that a run put THP back: THP was, when the run started, a mode
    the run changes (to `never`). Not so while another study runs (it holds THP at `never`),
    or where THP is not writable; the reason says which (see premise)."""
    from bench.measure.machine import thp_writable
    from bench.measure.runlock import held_by

    if before not in (None, "never") and thp_writable():
        return
    holder = held_by(MACHINE_LOCK)
    why = f"; a run holds this machine ({holder}) and keeps it there" if holder else ""
    premise(
        False,
        f"THP was {before!r} (writable: {thp_writable()}) when the run started{why}: the run "
        "left it alone, so whether a run puts it back cannot be checked",
    )


def premise_cgroups() -> None:
    """The premise of a check that a run removes (or leaves) its memory cgroups."""
    from bench.measure.groups import cgroup_support

    premise(
        cgroup_support().parent is not None,
        "no writable memory cgroup here: whether a run removes its cgroups cannot be checked",
    )


def stray_cgroups() -> list[str]:
    """The memory cgroups a run made (our prefix) that exist now and whose maker is gone.

    A cgroup is named allocstudy-<pid of its maker>-<label>-<hex>. The machine is shared:
    another study (a developer's, in another checkout) makes and removes its own while a test
    runs, and comparing every cgroup before and after would count those. Cgroups whose maker
    still runs are left out; the test's own runs have ended when it looks.
    """
    from bench.measure.groups import PREFIX, cgroup_support

    support = cgroup_support()
    if support.parent is None:
        return []
    found = []
    for path in support.parent.iterdir():
        if not path.name.startswith(PREFIX):
            continue
        maker = path.name[len(PREFIX) :].split("-", 1)[0]
        if maker.isdigit() and Path(f"/proc/{maker}").exists():
            continue  # a run that still runs: its own business
        found.append(path.name)
    return found


def our_processes(mark: str) -> list[int]:
    """The processes whose environment has ALLOCSTUDY_TEST_MARK=`mark` (a run and its own)."""
    entry = f"ALLOCSTUDY_TEST_MARK={mark}".encode()
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if entry in env.split(b"\0"):
            found.append(int(pid))
    return found
