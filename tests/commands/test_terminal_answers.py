"""Answers in the terminal, on real runs: run's summary, runs, show, export, --set, plan,
--version, and compare's --fail-on and --markdown.

One extra real run (a glibc-only, control-less tiny study made with `--set`) exercises the
summary and the overrides end to end; everything else reads the session's tiny_run.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from studyrun import run_cli

from bench.progress import Progress
from bench.report.aggregate import aggregate
from bench.report.headline_table import headline_rows
from bench.report.runfolders import check_freshness, load_run, run_at
from bench.results.manifest import read_manifest
from bench.results.tables import read_table, write_table

SETS = ("--set", "allocators=[glibc]", "--set", "service.load_s=2", "--set", "service.rate=30")


@pytest.fixture(scope="module")
def set_run(tiny_spec: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A real run of the tiny spec changed with --set: (its folder, its stdout, its stderr)."""
    out = tmp_path_factory.mktemp("set_results")
    proc = run_cli("run", str(tiny_spec), *SETS, "--no-control", "--out", str(out), "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1]), proc.stdout, proc.stderr


@pytest.mark.slow
def test_run_prints_the_articles_headline_before_the_run_folder(set_run: tuple[Path, str, str]):
    run_dir, stdout, _ = set_run
    assert run_dir.is_dir()
    lines = stdout.strip().splitlines()
    assert lines[-1] == str(run_dir)  # scripts read the folder from the last line
    table = "\n".join(lines[:-1])
    for col in ("allocator", "peak", "settled", "given back", "p99", "control", "flags"):
        assert col in table
    (row,) = headline_rows(aggregate(load_run(run_at(run_dir))))
    glibc = next(line for line in lines if line.lstrip("│ ").startswith("glibc"))
    for cell in (row.peak, row.settled, row.given_back, row.p99):
        assert cell in glibc, (cell, glibc)
    assert row.control == "not measured"  # --no-control


@pytest.mark.slow
def test_set_changes_the_run_and_is_recorded_with_the_spec_hash(
    set_run: tuple[Path, str, str], tiny_spec: Path
):
    run_dir, _, _ = set_run
    m = read_manifest(run_dir)
    assert m["spec_overrides"] == ["allocators=[glibc]", "service.load_s=2", "service.rate=30"]
    assert m["spec"]["service"]["rate"] == 30 and m["spec"]["service"]["load_s"] == 2
    assert [a["name"] for a in m["allocators"]] == ["glibc"]
    plain = json.loads(run_cli("plan", str(tiny_spec), "--json").stdout)
    assert m["spec_sha256"] != plain["spec_sha256"]
    shown = json.loads(run_cli("show", str(run_dir), "--json").stdout)
    assert shown["overrides"] == m["spec_overrides"]
    assert "--set service.rate=30" in run_cli("show", str(run_dir)).stdout
    # the article's provenance: the data match the file as changed for this run, not stale
    fresh = check_freshness(m, [tiny_spec.parent])
    assert fresh.state == "current", fresh.detail
    assert "with --set allocators=[glibc], service.load_s=2, service.rate=30" in fresh.detail


@pytest.mark.slow
def test_compare_names_the_set_among_the_differences(set_run: tuple[Path, str, str], tiny_run):
    run_dir, _, _ = set_run
    data = json.loads(run_cli("compare", "--json", str(tiny_run), str(run_dir)).stdout)
    sets = [d for d in data["differences"] if d["key"] == "--set"]
    assert sets == [
        {
            "section": "spec",
            "key": "--set",
            "a": None,
            "b": "allocators=[glibc], service.load_s=2, service.rate=30",
        }
    ]


@pytest.mark.slow
def test_the_live_display_counts_down_the_whole_run(set_run: tuple[Path, str, str]):
    _, _, stderr = set_run
    lefts = [
        int(m.group(1)) * 60 + int(m.group(2))
        for m in re.finditer(r"run: about (\d+):(\d\d) left", stderr)
    ]
    assert len(lefts) >= 3, stderr[-2000:]
    assert lefts[0] >= 8  # start 2 + warm-up 1 + load 2 + idle 3 of one service cell
    assert lefts[-1] <= lefts[0] - 3  # and it went down as the run went on


def test_time_left_sums_this_step_and_every_later_one():
    p = Progress(total=3, interactive=False, steps_s=[10.0, 20.0, 30.0])
    p.index = 1
    assert p.run_left_s(100.0) == 60.0
    assert p.run_left_s(104.0) == 56.0
    p.index = 2
    assert p.run_left_s(107.0) == 50.0
    assert p.run_left_s(200.0) == 30.0  # a step past its estimate counts as done
    assert Progress(total=1, interactive=False).run_left_s(0.0) is None


def test_a_bad_set_is_one_line_naming_the_key(tiny_spec: Path):
    for args, line in (
        (("--set", "service.rate=-5"), "--set service.rate: must be greater than 0"),
        (("--set", "service.nope=1"), "--set service.nope: unknown key"),
        (("--set", "repeats"), "--set repeats: expected KEY=VALUE"),
        (("--set", "title.x=1"), "--set title.x: title is not a mapping"),
    ):
        proc = run_cli("plan", str(tiny_spec), *args)
        assert proc.returncode == 2
        assert proc.stderr.strip() == line, proc.stderr
        assert "Traceback" not in proc.stderr


def test_plan_lists_every_cell_in_run_order_with_its_phases(tiny_spec: Path):
    proc = run_cli("plan", str(tiny_spec), "--set", "repeats=2", "--json", "--cluster-hosts", "2")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    keys = [(c["allocator"], c["experiment"], c["repeat"]) for c in data["cells"]]
    # round 0 in spec order, round 1 rotated; control repeats: 2 in the tiny spec
    assert keys == [
        ("glibc", "service", 0), ("glibc", "control", 0),
        ("jemalloc", "service", 0), ("jemalloc", "control", 0),
        ("jemalloc", "service", 1), ("jemalloc", "control", 1),
        ("glibc", "service", 1), ("glibc", "control", 1),
    ]  # fmt: skip
    service = data["cells"][0]["phases"]
    assert (service["warmup"], service["load"], service["idle"]) == (1, 5, 3)
    assert data["total_s"] == pytest.approx(sum(c["seconds"] for c in data["cells"]))
    assert data["total_s"] / 2 < data["cluster_total_s"]["2"] < data["total_s"]
    text = run_cli("plan", str(tiny_spec), "--cluster-hosts", "3").stdout
    assert "estimated total" in text and "on a cluster of 3 hosts" in text


@pytest.mark.slow
def test_plan_estimates_a_real_run_within_a_fifth(tiny_run: Path, tiny_spec: Path):
    data = json.loads(run_cli("plan", str(tiny_spec), "--json").stdout)
    m = read_manifest(tiny_run)
    took = (datetime.fromisoformat(m["finished"]) - datetime.fromisoformat(m["started"])).seconds
    assert data["total_s"] == pytest.approx(took, rel=0.25), (data["total_s"], took)


def test_version_names_the_package_and_the_commit():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("allocstudy 0.1.0 (git ")


@pytest.mark.slow
def test_runs_lists_each_run_with_its_spec_status_allocators_date_and_host(tiny_run: Path):
    data = json.loads(run_cli("runs", "--out", str(tiny_run.parents[1]), "--json").stdout)
    (r,) = data["runs"]
    m = read_manifest(tiny_run)
    assert (r["spec"], r["id"], r["status"], r["shown"]) == (
        "tiny",
        tiny_run.name,
        "complete",
        True,
    )
    assert r["allocators"] == ["glibc", "jemalloc"]
    assert (r["date"], r["host"]) == (m["started"], m["host"]["hostname"])
    text = run_cli("runs", "--out", str(tiny_run.parents[1])).stdout
    assert f"{tiny_run.name} *" in text and "glibc, jemalloc" in text


@pytest.mark.slow
def test_show_prints_the_same_numbers_as_the_report_engine(tiny_run: Path):
    data = json.loads(run_cli("show", str(tiny_run.parent / "latest"), "--json").stdout)
    rows = headline_rows(aggregate(load_run(run_at(tiny_run))))
    assert [a["allocator"] for a in data["allocators"]] == [r.allocator for r in rows]
    assert data["allocators"][0]["peak"] == rows[0].peak
    assert data["allocators"][0]["numbers"]["control_allocs_per_s"] > 0
    proc = run_cli("show", str(tiny_run.parent / "nope"))
    assert proc.returncode == 2 and "no such run folder" in proc.stderr


@pytest.mark.slow
def test_export_writes_every_table_in_each_format(tiny_run: Path, tmp_path: Path):
    memory = read_table(tiny_run / "memory.arrow", "memory")
    for fmt, ext in (("csv", "csv"), ("parquet", "parquet"), ("json", "jsonl")):
        proc = run_cli("export", str(tiny_run), "--format", fmt, "--to", str(tmp_path / fmt))
        assert proc.returncode == 0, proc.stderr
        written = {Path(p).name for p in proc.stdout.split()}
        assert f"summary.{ext}" in written and f"memory.{ext}" in written
    with (tmp_path / "csv" / "memory.csv").open() as f:
        assert sum(1 for _ in csv.DictReader(f)) == memory.num_rows
    assert pq.read_table(tmp_path / "parquet" / "memory.parquet").num_rows == memory.num_rows
    lines = (tmp_path / "json" / "summary.jsonl").read_text().splitlines()
    assert {json.loads(x)["allocator"] for x in lines} == {"glibc", "jemalloc"}
    proc = run_cli("export", str(tiny_run), "--format", "csv", "--table", "memroy")
    assert proc.returncode == 2 and "--table memroy: no such table" in proc.stderr


def _heavier(run_dir: Path, into: Path) -> Path:
    """A copy of a real run whose service used half as much memory again, every repeat."""
    copy = into / "tiny" / run_dir.name
    shutil.copytree(run_dir, copy)
    table: pa.Table = read_table(copy / "summary.arrow", "summary")
    for col in ("peak_anon_bytes", "settled_anon_bytes"):
        scaled = pc.cast(pc.multiply(table[col], 1.5), pa.int64())
        table = table.set_column(table.schema.get_field_index(col), col, scaled)
    write_table(copy / "summary.arrow", "summary", table)
    return copy


@pytest.mark.slow
def test_fail_on_memory_exits_1_only_when_memory_moved_the_bad_way(tiny_run: Path, tmp_path: Path):
    heavy = _heavier(tiny_run, tmp_path)
    same = run_cli("compare", str(tiny_run), str(tiny_run), "--fail-on", "memory,latency")
    assert same.returncode == 0, same.stderr
    worse = run_cli("compare", str(tiny_run), str(heavy), "--fail-on", "memory")
    assert worse.returncode == 1, worse.stderr
    assert "--fail-on: glibc service peak worse by" in worse.stderr
    better = run_cli("compare", str(heavy), str(tiny_run), "--fail-on", "memory")
    assert better.returncode == 0, better.stderr  # less memory is no failure
    latency_only = run_cli("compare", str(tiny_run), str(heavy), "--fail-on", "latency")
    assert latency_only.returncode == 0  # the latencies are the same numbers
    bad = run_cli("compare", str(tiny_run), str(heavy), "--fail-on", "memroy")
    assert bad.returncode == 2 and "--fail-on memroy: not a measure group" in bad.stderr


@pytest.mark.slow
def test_markdown_is_a_table_fit_for_a_pull_request(tiny_run: Path, tmp_path: Path):
    heavy = _heavier(tiny_run, tmp_path)
    proc = run_cli("compare", str(tiny_run), str(heavy), "--markdown")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = lines.index("| allocator | measure | A | B | change | % | verdict | decided by |")
    assert lines[head + 1].startswith("|---|")
    peak = next(x for x in lines if x.startswith("| glibc | service peak |"))
    assert "+50.0%" in peak and "**changed (worse)**" in peak
