"""`allocstudy run` under the spec's memory limit: a worker the kernel kills at the limit is a
result (recorded, flagged, the run goes on and completes), and a limit with no cgroup to hold
it refuses the run in one line."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, BackgroundRun, our_processes, stray_cgroups

from bench import cli
from bench.commands import doctor
from bench.commands import run as run_command
from bench.measure.groups import CgroupSupport, cgroup_support
from bench.results.manifest import read_manifest
from bench.results.rundir import read_rows
from bench.spec import parse_spec

pytestmark = pytest.mark.real_run

#: A tiny study whose workers outgrow the limit within a second or two of load: large pinned
#: buffers (about 30 MB a second a worker), under a limit some 70 MB above what the freshly
#: started service (2 workers, its supervisor and the page cache of its imports) is charged.
LIMITED_SPEC = (
    TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc]")
    .replace("rate: 40", "rate: 60")
    .replace("load_s: 5", "load_s: 4")
    .replace("idle_s: 3", "idle_s: 2")
    .replace("live_buffers: 400", "live_buffers: 3000")
    .replace("long_lived_share: 0.3", "long_lived_share: 0.5\n    max_bytes: 524288")
    .replace(
        "  payload: {max_items: 100}\n",
        "  payload: {max_items: 100}\n  memory_limit_mb: 200\n",
    )
)
assert "memory_limit_mb: 200" in LIMITED_SPEC and "max_bytes: 524288" in LIMITED_SPEC


def _isolated(tmp_path: Path) -> dict[str, str]:
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(tmp), "ALLOCSTUDY_JOURNAL": str(tmp_path / "j.json")}


@pytest.mark.slow  # 10 s; the OOM kill recorded: test_oomkills, test_service_limits
def test_a_worker_killed_at_the_limit_is_recorded_and_the_run_completes(tmp_path: Path):
    support = cgroup_support()
    if support.mode == "none":
        pytest.skip(f"a memory limit needs a writable memory cgroup ({support.reason})")
    spec = tmp_path / "limited.yaml"
    spec.write_text(LIMITED_SPEC)
    mark = f"{tmp_path.name}-limit"
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec),
        "--out",
        str(tmp_path / "results"),
        "--no-control",
        "--wait",
        env_mark=mark,
        env=_isolated(tmp_path),
    )
    try:
        code, stdout, stderr = run.finish(timeout=300)
    finally:
        run.kill()
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "glibc: ok" in stderr

    deadline = time.monotonic() + 5  # nothing left behind: no process, no cgroup, no file
    while our_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_processes(mark) == []
    assert set(stray_cgroups()) == before
    assert list((tmp_path / "tmp").iterdir()) == []

    run_dir = Path(stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    assert m["status"] == "complete"
    assert m["method"]["memory_limit_bytes"] == 200_000_000
    (glibc,) = m["allocators"]
    assert glibc["status"] == "ok", glibc["reason"]
    (limited,) = glibc["memory_limit"]
    assert limited["limit_bytes"] == 200_000_000 and limited["mode"] == support.mode
    assert limited["deaths"], limited
    assert all(d["signal"] == "SIGKILL" for d in limited["deaths"])
    assert {"launch", "warmup", "load", "idle", "end"} <= {c["at"] for c in limited["counters"]}
    if limited["counters"][-1]["oom_kills"] is not None:  # the kernel counted each kill
        assert {d["cause"] for d in limited["deaths"]} == {"oom_kill"}
        assert limited["counters"][-1]["oom_kills"] >= len(limited["deaths"])

    (row,) = read_rows(run_dir)["summary"]
    assert row["memory_limit_bytes"] == 200_000_000
    assert row["oom_kills"] == len(limited["deaths"]) >= 1
    assert row["first_oom_s"] == min(d["t_s"] for d in limited["deaths"])
    assert row["limit_hits"] is not None and row["limit_hits"] > 0
    assert row["peak_charged_bytes"] <= 200_000_000 + 4096
    assert row["flagged"] and ("OOM-killed" in row["flags"] or "memory limit" in row["flags"])
    load = next(p for p in glibc["phases"]["service"] if p["phase"] == "load")
    assert load["end_s"] - load["start_s"] == pytest.approx(4, abs=0.5)  # the load went on

    # the replacements uvicorn started are proven on the allocator like the first workers
    evidence = glibc["evidence"]["service"]
    replacements = [e for e in evidence if e["role"] == "replacement worker"]
    assert replacements, evidence
    assert all(e["mapped"] is True for e in replacements)
    killed = {d["pid"] for d in limited["deaths"]}
    assert not killed & {e["pid"] for e in replacements}


def test_a_limit_with_no_cgroup_to_hold_it_refuses_the_run_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(
        run_command,
        "cgroup_support",
        lambda: CgroupSupport("none", None, "procfs fallback: no writable memory cgroup"),
    )
    spec = tmp_path / "limited.yaml"
    spec.write_text(LIMITED_SPEC)
    out = tmp_path / "results"
    assert cli.main(["run", str(spec), "--out", str(out)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "allocstudy: service.memory_limit_mb needs a writable memory cgroup, and this machine "
        "has none (procfs fallback: no writable memory cgroup); run as root, or drop the limit"
    ]
    assert not out.exists()  # refused before anything was measured or written


def test_doctor_says_a_spec_with_a_limit_cannot_run_without_a_cgroup(
    monkeypatch: pytest.MonkeyPatch,
):
    none = CgroupSupport("none", None, "procfs fallback: no writable memory cgroup")
    monkeypatch.setattr(doctor, "cgroup_support", lambda: none)
    report = doctor.diagnose(parse_spec(LIMITED_SPEC))
    assert report["can_run"] is False
    assert any(
        p["what"].startswith("service.memory_limit_mb needs a writable memory cgroup")
        and p["blocking"]
        for p in report["problems"]
    ), report["problems"]
