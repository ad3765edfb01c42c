"""`allocstudy run` under faults produced for real: a worker killed under load, a runner
killed with SIGKILL (put back by `doctor`, continued by `--resume`), a results folder that is
read-only from the start, a disk that fills mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from studyrun import (
    TINY_SPEC,
    BackgroundRun,
    our_processes,
    premise_cgroups,
    premise_thp_was_changed,
    run_cli,
    stray_cgroups,
)

from bench.measure.groups import cgroup_support, remove_cgroup
from bench.measure.machine import THP_ENABLED, thp_mode
from bench.results.manifest import ManifestError, read_manifest
from bench.results.rundir import read_rows

pytestmark = pytest.mark.real_run


def _no_core_dumps() -> None:
    """A worker killed by SIGSEGV would dump core into the project folder on some machines."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _workers(mark: str) -> list[int]:
    """The run's uvicorn workers (multiprocessing children of the supervisor)."""
    found = []
    for pid in our_processes(mark):
        with contextlib.suppress(OSError):
            if b"--multiprocessing-fork" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return sorted(found)


def _isolated(tmp_path: Path) -> dict[str, str]:
    """The run's environment: its temporary files and its journal in folders of the test."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {
        **os.environ,
        "TMPDIR": str(tmp),
        "ALLOCSTUDY_JOURNAL": str(tmp_path / "journal.json"),
    }


def _nothing_left(mark: str, cgroups_before: set[str], tmp_path: Path) -> None:
    deadline = time.monotonic() + 5
    while our_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_processes(mark) == []
    assert set(stray_cgroups()) == cgroups_before
    assert list((tmp_path / "tmp").iterdir()) == []


#: The faulted run's load: long enough that a death 1 s in plainly cuts it short.
FAULTED_LOAD_S = 4


@dataclass
class Faulted:
    """What one real run went through, step by step (see faulted_run)."""

    run_dir: Path
    spec: Path
    victim: int  # the glibc worker killed with SIGSEGV
    thp_before: str | None
    thp_during: str | None
    run_stderr: str
    killed: dict[str, Any]  # the manifest as the SIGKILL left it
    killed_rows: dict[str, list[dict[str, Any]]]
    alive_after_kill: list[int]
    thp_after_kill: str | None
    left_cgroups: set[str]
    doctor: subprocess.CompletedProcess[str]
    thp_after_doctor: str | None
    cgroups_after_doctor: set[str]
    journal_after_doctor: object
    resumed: subprocess.CompletedProcess[str]
    thp_after_resume: str | None


@pytest.fixture(scope="module")
def faulted_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulted]:
    """One real run through three faults, shared by the tests that read it: a glibc worker
    killed with SIGSEGV 1 s into its load (glibc fails alone), then, under jemalloc's load,
    the runner itself killed with SIGKILL while it holds THP at `never` and a memory cgroup
    (none of its clean-up runs), then `allocstudy doctor --restore`, then `run --resume`."""
    thp_before = thp_mode()
    tmp_path = tmp_path_factory.mktemp("faulted")
    spec = tmp_path / "faulted.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", f"load_s: {FAULTED_LOAD_S}"))
    out = tmp_path / "results"
    mark = f"{tmp_path.name}-faulted"
    env = _isolated(tmp_path)
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec), "--out", str(out), "--no-control", env_mark=mark, env=env,
        preexec_fn=_no_core_dumps,
    )  # fmt: skip
    try:
        assert run.wait_for("glibc service: load", timeout=90), "".join(run.stderr)[-2000:]
        time.sleep(1)
        victim = _workers(mark)[0]
        os.kill(victim, signal.SIGSEGV)
        assert run.wait_for("jemalloc service: load", timeout=90), "".join(run.stderr)[-2000:]
        thp_during = thp_mode()
        run.proc.kill()  # SIGKILL the runner alone: nothing of its own clean-up runs
        run.proc.wait(timeout=10)
        deadline = time.monotonic() + 15
        while our_processes(mark) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive, thp_after_kill = our_processes(mark), thp_mode()
        left = set(stray_cgroups()) - before
        (run_dir,) = (out / "tiny").iterdir()
        killed, killed_rows = read_manifest(run_dir), read_rows(run_dir)
        doctor = run_cli("doctor", "--restore", env=env)
        thp_after_doctor, after_doctor = thp_mode(), set(stray_cgroups()) - before
        journal = json.loads((tmp_path / "journal.json").read_text())
        resumed = run_cli("run", str(spec), "--out", str(out), "--resume", "--no-control", env=env)
        yield Faulted(
            run_dir=run_dir, spec=spec, victim=victim, thp_before=thp_before, thp_during=thp_during,
            run_stderr="".join(run.stderr), killed=killed, killed_rows=killed_rows,
            alive_after_kill=alive, thp_after_kill=thp_after_kill, left_cgroups=left,
            doctor=doctor, thp_after_doctor=thp_after_doctor,
            cgroups_after_doctor=after_doctor, journal_after_doctor=journal,
            resumed=resumed, thp_after_resume=thp_mode(),
        )  # fmt: skip
    finally:
        run.kill()
        for pid in our_processes(mark):  # never leave a stray service behind a failure
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if thp_before is not None and thp_mode() != thp_before:
            THP_ENABLED.write_text(thp_before)  # never leave the machine changed
        parent = cgroup_support().parent
        for name in set(stray_cgroups()) - before:  # only if the doctor did not
            assert parent is not None
            remove_cgroup(parent / name, timeout=10)


def test_a_worker_killed_under_load_fails_its_allocator_alone_and_keeps_what_it_measured(
    faulted_run: Faulted,
):
    f = faulted_run
    assert "Traceback" not in f.run_stderr
    glibc, jemalloc = f.killed["allocators"]
    assert glibc["status"] == "failed"
    assert glibc["reason"].startswith(f"repeat 1: worker {f.victim} was killed by SIGSEGV ")
    assert f"glibc: failed: {glibc['reason']}" in f.run_stderr
    assert jemalloc["status"] == "running"  # the next allocator still ran

    rows = f.killed_rows
    (flagged,) = [r for r in rows["summary"] if r["allocator"] == "glibc"]
    assert flagged["flagged"] is True
    found = re.match(
        rf"worker {f.victim} was killed by SIGSEGV (\d+\.\d) s into the run \(load\)",
        flagged["flags"],
    )
    assert found, flagged["flags"]
    died_at = float(found.group(1))
    load = next(p for p in glibc["phases"]["service"] if p["phase"] == "load")
    assert load["start_s"] < died_at <= load["end_s"] + 0.1
    requests = [r for r in rows["requests"] if r["allocator"] == "glibc"]
    in_load = sum(r["phase"] == "load" for r in requests)
    assert 0 < in_load < 40 * FAULTED_LOAD_S  # the repeat stopped at the death, not its end
    memory = [r for r in rows["memory"] if r["allocator"] == "glibc"]
    assert {"start", "warmup", "load"} <= {r["phase"] for r in memory}
    # kept up to the death: the flag gives its time rounded to 0.1 s, so the last sample
    # before a death at 4.26 s (said "4.3 s") may be the one at 4.25 s
    assert max(r["t_s"] for r in memory) >= died_at - 0.05


def test_a_sigkilled_run_leaves_no_process_and_doctor_removes_its_cgroups(
    faulted_run: Faulted,
):
    f = faulted_run
    assert f.alive_after_kill == []  # service, generator, supervisor: died with it (kernel)
    premise_cgroups()
    assert f.left_cgroups  # a killed run cannot remove its own cgroup
    assert f.doctor.returncode == 0, f.doctor.stderr
    parent = cgroup_support().parent
    assert parent is not None
    for name in f.left_cgroups:
        assert f"removed the cgroup {parent / name}" in f.doctor.stderr
    assert f.cgroups_after_doctor == set()
    assert f.journal_after_doctor == []


def test_doctor_puts_back_the_thp_a_sigkilled_run_left_changed(faulted_run: Faulted):
    f = faulted_run
    premise_thp_was_changed(f.thp_before)
    assert f.thp_during == "never"  # the run changed it, and held it changed
    assert f.thp_after_kill == "never"  # left changed: only the journal knows the original
    assert f"restored {THP_ENABLED} to {f.thp_before!r}, left changed by run pid " in (
        f.doctor.stderr
    )
    assert f.thp_after_doctor == f.thp_before
    assert f.journal_after_doctor == []
    assert f.thp_after_resume == f.thp_before  # the resumed run put its own change back


def test_resume_of_a_sigkilled_run_continues_it_and_keeps_what_was_finished(
    faulted_run: Faulted,
):
    f = faulted_run
    assert f.killed["status"] == "running"  # as the SIGKILL left it
    assert f.resumed.returncode == 3, f.resumed.stderr[-2000:]  # glibc's failure stands
    assert Path(f.resumed.stdout.strip().splitlines()[-1]) == f.run_dir
    assert "glibc: kept from the interrupted run (failed)" in f.resumed.stderr
    m = read_manifest(f.run_dir)
    assert m["status"] == "complete"
    assert [(a["name"], a["status"]) for a in m["allocators"]] == [
        ("glibc", "failed"),
        ("jemalloc", "ok"),
    ]
    assert m["allocators"][0] == f.killed["allocators"][0]  # its record untouched
    rows = read_rows(f.run_dir)
    for name, table in rows.items():  # byte for byte what glibc measured before the kill
        glibc = [r for r in table if r["allocator"] == "glibc"]
        assert glibc == [r for r in f.killed_rows[name] if r["allocator"] == "glibc"], name
    (fine,) = [r for r in rows["summary"] if r["allocator"] == "jemalloc"]
    assert "killed" not in (fine["flags"] or "")
    times = [r["t_s"] for r in rows["memory"] if r["allocator"] == "jemalloc"]
    assert times == sorted(times) and times  # one repeat's samples, the killed one's dropped
    # (the SIGKILLed runner's own scratch folders stay in $TMPDIR: nothing of its clean-up ran)


@contextlib.contextmanager
def _mounted_tmpfs(path: Path, options: str) -> Iterator[Path]:
    """A real tmpfs at `path` (root only): a small disk, or a read-only one."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a small or read-only disk) needs root")
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "allocstudy-test", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


@contextlib.contextmanager
def _read_only_folder(path: Path) -> Iterator[tuple[Path, str]]:
    """A folder no file can be created in, and the problem the run must name: a read-only
    tmpfs as root (who writes through any mode bits), mode 0555 otherwise."""
    if os.geteuid() == 0:
        with _mounted_tmpfs(path, "ro,size=1m"):
            yield path, "Read-only file system"
        return
    path.mkdir()
    path.chmod(0o555)
    try:
        yield path, "Permission denied"
    finally:
        path.chmod(0o755)


def test_a_read_only_results_folder_is_one_line_and_exit_1_before_anything_changes(
    tiny_spec: Path, tmp_path: Path
):
    before = set(stray_cgroups())
    with _read_only_folder(tmp_path / "ro") as (ro, problem):
        proc = run_cli("run", str(tiny_spec), "--out", str(ro), env=_isolated(tmp_path))
        assert list(ro.iterdir()) == []
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [
        f"allocstudy: cannot write the results folder {ro / 'tiny'}: {problem}"
    ]
    assert proc.stdout == ""
    assert set(stray_cgroups()) == before
    assert list((tmp_path / "tmp").iterdir()) == []
    # refused before the run touched anything: THP and cgroups are journalled before changed
    assert not (tmp_path / "journal.json").exists()


def _saved_as_done(out: Path, name: str, run: BackgroundRun, timeout: float = 90) -> bool:
    """Wait until the run's manifest on disk says allocator `name` is ok."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and run.proc.poll() is None:
        with contextlib.suppress(ManifestError, ValueError):
            for run_dir in (out / "tiny").glob("*/"):
                status = {a["name"]: a["status"] for a in read_manifest(run_dir)["allocators"]}
                if status.get(name) == "ok":
                    return True
        time.sleep(0.2)
    return False


def test_a_disk_that_fills_mid_run_stops_it_with_one_line_and_leaves_nothing_behind(
    tmp_path: Path,
):
    spec = tmp_path / "full.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 2").replace("idle_s: 3", "idle_s: 2"))
    mark = f"{tmp_path.name}-full"
    thp_before = thp_mode()
    before = set(stray_cgroups())
    env = _isolated(tmp_path)
    with _mounted_tmpfs(tmp_path / "disk", "size=4m") as disk:
        run = BackgroundRun(str(spec), "--out", str(disk), "--no-control", env_mark=mark, env=env)
        try:
            # glibc is done and its rows are on the disk; the disk fills under jemalloc's load
            assert _saved_as_done(disk, "glibc", run), "".join(run.stderr)[-2000:]
            assert run.wait_for("jemalloc service: load", timeout=60)
            with contextlib.suppress(OSError), open(disk / "filler", "wb") as filler:
                while True:
                    filler.write(b"\0" * 65536)
            code, stdout, stderr = run.finish(timeout=120)
        finally:
            run.kill()
        (run_dir,) = (disk / "tiny").iterdir()
        assert code == 1, stderr[-2000:]
        assert "Traceback" not in stderr and stdout == ""
        errors = [line for line in stderr.splitlines() if line.startswith("allocstudy:")]
        assert errors == [
            f"allocstudy: cannot write the results folder {run_dir}: No space left on device; "
            "the run stopped; what it wrote before is kept (--resume continues it once the "
            "folder can be written)"
        ]
        assert sorted(p.name for p in run_dir.iterdir()) == [  # no temporary file left
            "control.arrow",
            "logs",  # the workers' own output, per repeat
            "manifest.json",
            "memory.arrow",
            "requests.arrow",
            "restarts.arrow",
            "retention.arrow",  # glibc's workers' readings, saved with glibc
            "stages.arrow",  # what glibc's load did, stage by stage
            "summary.arrow",
        ]
        m = read_manifest(run_dir)  # the last manifest written, whole
        assert [(a["name"], a["status"]) for a in m["allocators"]] == [
            ("glibc", "ok"),
            ("jemalloc", "running"),
        ]
        assert {r["allocator"] for r in read_rows(run_dir)["summary"]} == {"glibc"}
    _nothing_left(mark, before, tmp_path)
    assert json.loads((tmp_path / "journal.json").read_text()) == []  # all crossed out
    premise_cgroups()  # else the cgroup checks above compared two empty sets
    thp = m["confounds"]["thp"]
    premise_thp_was_changed(thp_before)
    assert (thp["before"], thp["during"]) == (thp_before, "never")
    assert thp_mode() == thp_before  # put back on the way out
