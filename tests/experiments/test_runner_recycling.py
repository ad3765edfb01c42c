"""`allocstudy run` of a spec whose variant recycles its workers, for real: the restarts are
recorded and proven, no request row is lost, and the allocator is ok, not failed."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, our_processes, run_cli, stray_cgroups

from bench.allocators.registry import libc_path
from bench.results.manifest import read_manifest
from bench.results.rundir import read_rows

pytestmark = pytest.mark.real_run

#: TINY_SPEC's service (2 workers, 40 requests/s, 5 s of load) under glibc, as it is and
#: recycled every 30-35 requests: a worker serves about 100 requests of load, so about three
#: generations each.
RECYCLING_SPEC = TINY_SPEC.replace(
    "allocators: [glibc, jemalloc]",
    "allocators:\n"
    "  - glibc\n"
    "  - name: glibc-recycled\n"
    "    base: glibc\n"
    "    service: {max_requests: 30, max_requests_jitter: 5}\n",
).replace("name: tiny", "name: tiny-recycling")


@pytest.mark.slow  # 23 s; restarts recorded: test_service_recycling, test_restarts
def test_a_recycling_run_records_every_restart_and_keeps_every_request(tmp_path: Path):
    spec = tmp_path / "recycling.yaml"
    spec.write_text(RECYCLING_SPEC)
    out = tmp_path / "results"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mark = f"{tmp_path.name}-recycling"
    env = {
        **os.environ,
        "TMPDIR": str(tmp),
        "ALLOCSTUDY_JOURNAL": str(tmp_path / "journal.json"),
        "ALLOCSTUDY_TEST_MARK": mark,
    }
    before = set(stray_cgroups())
    proc = run_cli("run", str(spec), "--out", str(out), "--no-control", "--wait", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr

    # nothing left behind: processes, cgroups, temporary files
    deadline = time.monotonic() + 5
    while our_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert our_processes(mark) == []
    assert set(stray_cgroups()) == before
    assert list(tmp.iterdir()) == []

    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    stock, recycled = m["allocators"]
    assert (stock["status"], recycled["status"]) == ("ok", "ok"), recycled["reason"]
    assert (run_dir / "restarts.arrow").is_file()
    rows = read_rows(run_dir)

    # every restart, with its pids and counts, in the recycled variant only
    restarts = rows["restarts"]
    assert {r["allocator"] for r in restarts} == {"glibc-recycled"}
    assert len(restarts) >= 4
    first = {e["pid"] for e in recycled["evidence"]["service"] if e["role"] == "worker"}
    assert len(first) == 2
    olds = {r["old_pid"] for r in restarts}
    news = [r["new_pid"] for r in restarts]
    assert first <= olds and len(set(news)) == len(news) and not first & set(news)
    assert olds - first <= set(news)  # a later generation retires a replacement
    phases = {p["phase"]: p for p in recycled["phases"]["service"]}
    for r in restarts:
        assert 30 <= r["limit"] <= 35 and r["requests"] >= r["limit"]
        assert r["t_s"] <= r["replaced_s"]
        assert r["ready_s"] is None or r["replaced_s"] <= r["ready_s"]
        assert 0 < r["t_s"] < phases["idle"]["end_s"] + 1
        assert r["phase"] in {"start", "warmup", "load", "idle"}
    assert any(r["phase"] == "load" for r in restarts)

    # every replacement proven on glibc, from inside it and by its maps
    proofs = {e["pid"]: e for e in recycled["evidence"]["service"] if "replacement" in e["role"]}
    ready = [r["new_pid"] for r in restarts if r["ready_s"] is not None]
    assert set(ready) <= set(proofs)
    for pid in ready:
        assert os.path.realpath(proofs[pid]["malloc_library"]) == libc_path()
        assert proofs[pid]["mapped"] in (True, None)  # None: recycled again before the check

    # no request row lost: the recycled run has the stock run's schedule, row for row
    def schedule(name: str) -> list[tuple[str, float]]:
        mine = [r for r in rows["requests"] if r["allocator"] == name]
        return sorted((r["phase"], round(r["intended_s"] - _t0(mine), 4)) for r in mine)

    assert schedule("glibc-recycled") == schedule("glibc")
    for r in rows["requests"]:
        assert r["done_s"] is not None or r["error"] is not None

    # the summary counts them; memory was sampled across every restart
    summary = {r["allocator"]: r for r in rows["summary"]}
    assert summary["glibc"]["restarts"] == 0 and summary["glibc"]["requests_during_restart"] == 0
    assert summary["glibc-recycled"]["restarts"] == len(restarts)
    hit = sum(r["requests_hit"] for r in restarts)
    assert 0 <= summary["glibc-recycled"]["requests_during_restart"] <= hit
    assert "worker" not in (summary["glibc-recycled"]["flags"] or "")  # no death flagged
    memory = [r for r in rows["memory"] if r["allocator"] == "glibc-recycled"]
    times = sorted(r["t_s"] for r in memory)
    assert times[0] < min(r["t_s"] for r in restarts)
    assert times[-1] > max(r["t_s"] for r in restarts)
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 1.0


def _t0(rows: list[dict[str, object]]) -> float:
    """The first scheduled time of a run's requests (each allocator's clock starts anew)."""
    return min(float(r["intended_s"]) for r in rows)  # type: ignore[arg-type]
