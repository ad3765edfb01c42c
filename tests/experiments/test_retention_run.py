"""The retention watcher: each worker's log read into retention.arrow by a real run, none
written when the spec turns it off, and a missing or empty log a note rather than a failure."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from studyrun import TINY_SPEC, run_cli

from bench.experiments.retention import read_logs
from bench.results.manifest import read_manifest
from bench.results.tables import table_rows
from bench.spec import parse_spec
from bench.spec.loading import SpecError, load_spec

ONE_ALLOCATOR = TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc]")
assert ONE_ALLOCATOR.count("[glibc]") == 1


def _with_retention(every_s: str) -> str:
    spec = ONE_ALLOCATOR.replace(
        "  sample_interval_s: 0.25\n",
        f"  sample_interval_s: 0.25\n  retention_every_s: {every_s}\n",
    )
    assert f"retention_every_s: {every_s}" in spec
    return spec


def _run(tmp_path: Path, spec_text: str) -> tuple[Path, Path]:
    """The run folder of a real run of `spec_text`, and its private temporary folder."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(spec_text)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp), "ALLOCSTUDY_JOURNAL": str(tmp_path / "j.json")}
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "out"), "--no-control", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1]), tmp


@pytest.mark.real_run
def test_a_run_records_where_every_workers_memory_sits(tmp_path: Path):
    run_dir, tmp = _run(tmp_path, _with_retention("0.5"))
    assert list(tmp.iterdir()) == []  # the logs went with the repeat's scratch folder
    rows = table_rows(run_dir / "retention.arrow", "retention")
    m = read_manifest(run_dir)
    (alloc,) = m["allocators"]
    workers = {str(e["pid"]) for e in alloc["evidence"]["service"] if e["role"] == "worker"}
    assert len(workers) == 2 and {r["worker"] for r in rows} == workers
    assert {r["allocator"] for r in rows} == {"glibc"} and {r["repeat"] for r in rows} == {0}
    (sampler,) = alloc["sampler"]
    assert sampler["retention"] == {"every_s": 0.5, "workers_logged": 2, "notes": []}

    readings: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        readings[(r["worker"], r["t_s"])].append(r)
    order = {"ready": 0, "load": 1, "idle": 2}
    for worker in workers:
        mine = sorted((t, rs) for (w, t), rs in readings.items() if w == worker)
        moments = [rs[0]["moment"] for _, rs in mine]
        assert moments == sorted(moments, key=order.__getitem__), moments
        assert set(moments) == set(order)
        marks = {rs[0]["mark"] for _, rs in mine} - {None}
        assert {"ready", "peak", "settled"} <= marks, marks
    phases = {p["phase"]: p for p in alloc["phases"]["service"]}
    for (_, t_s), rs in readings.items():
        by = {r["component"]: r["bytes"] for r in rs}
        # the components and `unaccounted` add up to the anonymous memory at every reading
        assert by["anon"] == sum(v for c, v in by.items() if c != "anon" and v is not None)
        assert by["anon"] > 0 and by["live"] is not None  # glibc states its bytes in use
        assert t_s <= phases["idle"]["end_s"]
        moment = rs[0]["moment"]
        assert (rs[0]["idle_t_s"] is not None) == (moment == "idle")
        if moment == "load":
            assert phases["load"]["start_s"] <= t_s <= phases["load"]["end_s"]


@pytest.mark.real_run
@pytest.mark.slow  # 11 s; a real run with retention: test_a_run_records_where_every_workers_...
def test_a_run_with_retention_off_writes_no_table(tmp_path: Path):
    run_dir, tmp = _run(tmp_path, _with_retention("0"))
    assert list(tmp.iterdir()) == []
    assert (run_dir / "summary.arrow").is_file()
    assert not (run_dir / "retention.arrow").exists()
    assert table_rows(run_dir / "retention.arrow", "retention", required=False) == []
    (alloc,) = read_manifest(run_dir)["allocators"]
    assert all("retention" not in s for s in alloc["sampler"])


def test_a_missing_or_empty_log_is_a_note_and_the_others_are_read(tmp_path: Path):
    reading = {"t": 1.0, "pid": 11, "internal": {}, "kernel": {"Pss_Anon": 4096}}
    (tmp_path / "retention-11.jsonl").write_text(json.dumps(reading) + "\n")
    (tmp_path / "retention-12.jsonl").write_text('{"t": 1.0, "pid": 12')  # torn, no whole line
    (tmp_path / "other.txt").write_text("not a log")
    lines, notes = read_logs(tmp_path, [11, 12, 13])
    assert lines == {"11": [reading]}
    assert notes == [
        "worker 12's retention log holds no whole reading",
        "worker 13 wrote no retention log",
    ]


def test_retention_every_s_keeps_the_hash_of_specs_without_it_and_refuses_negatives(
    tmp_path: Path,
):
    base = parse_spec(ONE_ALLOCATOR)
    assert "retention_every_s" not in base.canonical_json()
    assert base.service.retention_every_s == 2.0
    assert parse_spec(_with_retention("2.0")).spec_hash == base.spec_hash
    assert parse_spec(_with_retention("0.5")).spec_hash != base.spec_hash
    path = tmp_path / "neg.yaml"
    path.write_text(_with_retention("-1"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    line = _with_retention("-1").splitlines().index("  retention_every_s: -1") + 1
    assert f"{path}:{line}: service.retention_every_s:" in str(err.value)


def test_the_idle_ends_where_the_repeat_ended_it(tmp_path: Path):
    """A settled idle ends where its rule ended it: the phase log's idle end, not the later
    moment the service stopped; readings after it are no part of the table."""
    from types import SimpleNamespace

    from bench.experiments.harness import PhaseLog
    from bench.experiments.retention import RetentionWatcher
    from bench.experiments.watcher import Moment

    origin = 1000.0
    launch = SimpleNamespace(
        service=SimpleNamespace(retention_every_s=0.5),
        alloc=SimpleNamespace(name="glibc"),
        repeat=0,
        origin=origin,
        scratch=tmp_path,
        proofs=[{"pid": 7, "role": "worker"}],
    )
    watcher = RetentionWatcher(launch)  # type: ignore[arg-type]
    assert watcher.env()["ALLOCSTUDY_RETENTION_EVERY_S"] == "0.5"
    log = PhaseLog(0)
    log.begin("load", 2.0)
    log.begin("idle", 4.0)
    log.end(6.0)  # the rule ended the idle here; the service stopped later
    with open(tmp_path / "retention" / "retention-7.jsonl", "w") as out:
        for t_s in (1.0, 3.0, 5.0, 5.9, 7.0):
            kernel = {"Pss_Anon": 8192, "LazyFree": 0}
            out.write(json.dumps({"t": origin + t_s, "pid": 7, "kernel": kernel}) + "\n")
    watcher.moment(Moment("end", origin + 7.5))
    end = SimpleNamespace(origin=origin, log=log)
    added = watcher.finish(end)  # type: ignore[arg-type]
    times = sorted({r["t_s"] for r in added.rows["retention"]})
    assert times == [1.0, 3.0, 5.0, 5.9]
    settled = {r["t_s"] for r in added.rows["retention"] if r["mark"] == "settled"}
    assert settled == {5.9}
