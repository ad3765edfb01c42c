"""`allocstudy run` under faults produced for real: a worker killed under load, a results
folder that is read-only from the start, a disk that fills mid-run."""

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
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, BackgroundRun, our_processes, run_cli, stray_cgroups

from bench.measure.machine import thp_mode
from bench.results.manifest import ManifestError, read_manifest
from bench.results.rundir import read_rows

pytestmark = pytest.mark.slow


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


def test_a_worker_killed_under_load_fails_its_allocator_alone_and_keeps_what_it_measured(
    tmp_path: Path,
):
    spec = tmp_path / "crash.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 12"))
    out = tmp_path / "results"
    mark = f"{tmp_path.name}-crash"
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec),
        "--out",
        str(out),
        "--no-control",
        env_mark=mark,
        env=_isolated(tmp_path),
        preexec_fn=_no_core_dumps,
    )
    try:
        assert run.wait_for("glibc service: load", timeout=90), "".join(run.stderr)[-2000:]
        time.sleep(1)
        victim = _workers(mark)[0]
        os.kill(victim, signal.SIGSEGV)
        code, stdout, stderr = run.finish(timeout=120)
    finally:
        run.kill()
    assert code == 3, stderr[-2000:]
    assert "Traceback" not in stderr
    _nothing_left(mark, before, tmp_path)

    run_dir = Path(stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    glibc, jemalloc = m["allocators"]
    assert glibc["status"] == "failed"
    assert glibc["reason"].startswith(f"repeat 1: worker {victim} was killed by SIGSEGV ")
    assert f"glibc: failed: {glibc['reason']}" in stderr
    assert jemalloc["status"] == "ok", jemalloc["reason"]  # the next allocator still ran
    assert m["status"] == "complete"

    rows = read_rows(run_dir)
    (flagged,) = [r for r in rows["summary"] if r["allocator"] == "glibc"]
    assert flagged["flagged"] is True
    found = re.match(
        rf"worker {victim} was killed by SIGSEGV (\d+\.\d) s into the run \(load\)",
        flagged["flags"],
    )
    assert found, flagged["flags"]
    died_at = float(found.group(1))
    load = next(p for p in glibc["phases"]["service"] if p["phase"] == "load")
    assert load["start_s"] < died_at <= load["end_s"] + 0.1
    assert load["end_s"] - load["start_s"] < 8  # the repeat stopped at the death, not at 12 s
    memory = [r for r in rows["memory"] if r["allocator"] == "glibc"]
    assert {"start", "warmup", "load"} <= {r["phase"] for r in memory}
    assert max(r["t_s"] for r in memory) >= died_at  # kept up to the death, and a little on
    requests = [r for r in rows["requests"] if r["allocator"] == "glibc"]
    assert sum(r["phase"] == "load" for r in requests) > 0
    (fine,) = [r for r in rows["summary"] if r["allocator"] == "jemalloc"]
    assert "killed" not in (fine["flags"] or "")


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
    spec.write_text(TINY_SPEC)
    mark = f"{tmp_path.name}-full"
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
            "summary.arrow",
        ]
        m = read_manifest(run_dir)  # the last manifest written, whole
        assert [(a["name"], a["status"]) for a in m["allocators"]] == [
            ("glibc", "ok"),
            ("jemalloc", "running"),
        ]
        assert {r["allocator"] for r in read_rows(run_dir)["summary"]} == {"glibc"}
    _nothing_left(mark, before, tmp_path)
    thp = m["confounds"]["thp"]
    assert thp_mode() == thp["before"]  # put back on the way out
    assert json.loads((tmp_path / "journal.json").read_text()) == []  # and crossed out
