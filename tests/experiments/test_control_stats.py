"""The control's statistics log (--stats-log) under the real allocators, in real preloaded runs.

Each allocator runs once (about 4 s: a 0.3 s warm-up, 1 s of churn, 2 s of idle, a record
every 0.5 s) and the tests below read its log: whole JSON lines of one documented shape, the
family that really serves malloc, phases in order on a clock that moves forward, and native
figures that agree with the live set the program was told to hold.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.experiments.control_program import control_command, parse_event

MiB = 1 << 20
LIVE = 32 * MiB
EVERY_S = 0.5
WARMUP_S = 0.3
IDLE_S = 2.0
#: A record's t has 4 decimals: rounded to the nearest, it may read up to half a digit early.
T_ROUNDING = 0.5e-4

#: The allocator family each preload must be recognised as.
FAMILIES: dict[str, str] = {
    "glibc": "glibc",
    "jemalloc": "jemalloc",
    "tcmalloc": "tcmalloc",
    "mimalloc-v2": "mimalloc",
    "mimalloc-v3": "mimalloc",
}
ALLOCATORS = list(FAMILIES)
#: Each allocator's logged run takes about 3 s; `make test` reads the two families whose
#: statistics every other test exercises (glibc, jemalloc), the slow tier the others.
SLOW_FAMILIES = ("tcmalloc", "mimalloc-v2", "mimalloc-v3")
#: The allocators as test parameters, the slow tier's marked.
PARAMS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FAMILIES else n for n in ALLOCATORS]
#: Statistics each family must report, read or declared absent with a reason.
NATIVE: dict[str, tuple[str, ...]] = {
    "glibc": tuple(
        f"mallinfo2.{field}"
        for field in (
            "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
        ).split()
    ),
    "jemalloc": tuple(
        "stats.allocated stats.active stats.metadata stats.resident stats.mapped stats.retained "
        "stats.arenas.4096.pdirty stats.arenas.4096.pmuzzy".split()
    ),
    "tcmalloc": tuple(
        "generic.current_allocated_bytes generic.heap_size tcmalloc.pageheap_free_bytes "
        "tcmalloc.pageheap_unmapped_bytes tcmalloc.central_cache_free_bytes "
        "tcmalloc.transfer_cache_free_bytes tcmalloc.thread_cache_free_bytes".split()
    ),
    "mimalloc": tuple(
        "mi_process_info.current_commit mi_process_info.peak_commit mi_process_info.current_rss "
        "mi_stats_get_json.malloc_normal.current".split()
    ),
}
KERNEL_FIELDS = {"Pss_Anon", "Rss_Anon", "LazyFree", "AnonHugePages"}


@dataclass(frozen=True)
class StatsRun:
    records: list[dict[str, Any]]
    text: str
    result: dict[str, Any]
    phase_mono_s: dict[str, float]


def _command(binary: Path, log: Path, *extra: str, seconds: float = 1.0) -> list[str]:
    return [
        *control_command(
            binary, threads=2, live_bytes=LIVE, min_bytes=4096, max_bytes=65536,
            seconds=seconds, idle_s=IDLE_S, seed=1, warmup_s=WARMUP_S,
        ),
        "--stats-log", str(log), "--stats-every-s", repr(EVERY_S), *extra,
    ]  # fmt: skip


def _run(binary: Path, log: Path, env: dict[str, str], **kw: Any) -> StatsRun:
    proc = subprocess.run(
        _command(binary, log, **kw), env=env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    text = log.read_text()
    return StatsRun(
        records=[json.loads(line) for line in text.splitlines()],
        text=text,
        result=events[-1],
        phase_mono_s={e["phase"]: e["mono_s"] for e in events if e["event"] == "phase"},
    )


@pytest.fixture(scope="module")
def stats_runs(
    control_binary: Path,
    allocator_env: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], StatsRun]]:
    """One logged run per allocator, made on first use and shared by the tests below."""
    done: dict[str, StatsRun] = {}
    folder = tmp_path_factory.mktemp("stats-logs")

    def get(name: str) -> StatsRun:
        if name not in done:
            env = allocator_env(name)  # skips the test when the library is absent
            done[name] = _run(control_binary, folder / f"{name}.jsonl", env)
        return done[name]

    yield get


def _during(run: StatsRun, phase: str) -> list[dict[str, Any]]:
    return [r for r in run.records if r["phase"] == phase]


@pytest.mark.parametrize("name", PARAMS)
def test_every_line_is_one_whole_record_of_the_documented_shape(
    stats_runs: Callable[[str], StatsRun], name: str
) -> None:
    run = stats_runs(name)
    assert run.text.endswith("\n") and len(run.records) == len(run.text.splitlines())
    for record in run.records:
        assert set(record) == {"t", "pid", "phase", "internal", "kernel"}
        assert record["pid"] == run.result["pid"]
        internal = record["internal"]
        assert set(internal) == {"family", "version", "raw", "absent"}
        assert all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for v in internal["raw"].values()
        )
        # Whatever could not be read says why.
        assert all(isinstance(why, str) and len(why) > 10 for why in internal["absent"].values())
        assert not set(internal["raw"]) & set(internal["absent"])
        assert set(record["kernel"]) <= KERNEL_FIELDS
        assert record["kernel"]["Rss_Anon"] > 0
    # The page-table walk (smaps_rollup) is read at every phase change and in the idle, never
    # on a beat inside the timed churn, where RssAnon alone is read.
    changes = [
        r for i, r in enumerate(run.records) if i == 0 or r["phase"] != run.records[i - 1]["phase"]
    ]
    assert all("Pss_Anon" in r["kernel"] and "LazyFree" in r["kernel"] for r in changes)
    assert all("Pss_Anon" in r["kernel"] for r in _during(run, "idle"))
    beats = [r for r in _during(run, "churn") if r not in changes]
    assert beats and all(set(r["kernel"]) == {"Rss_Anon"} for r in beats)


@pytest.mark.parametrize("name", PARAMS)
def test_the_family_is_the_one_serving_malloc_and_says_what_it_reports(
    stats_runs: Callable[[str], StatsRun], name: str
) -> None:
    run = stats_runs(name)
    family = FAMILIES[name]
    for record in run.records:
        internal = record["internal"]
        assert internal["family"] == family
        assert internal["version"] and internal["version"] != "unknown"
        reported = set(internal["raw"]) | set(internal["absent"])
        assert set(NATIVE[family]) <= reported, set(NATIVE[family]) - reported
    version = run.records[0]["internal"]["version"]
    if name == "glibc":
        assert version.startswith("glibc 2.")
    elif name == "mimalloc-v2":
        assert version.startswith("2.")
    elif name == "mimalloc-v3":
        assert version.startswith("3.")


@pytest.mark.parametrize("name", PARAMS)
def test_phases_come_in_order_on_a_clock_that_moves_forward(
    stats_runs: Callable[[str], StatsRun], name: str
) -> None:
    run = stats_runs(name)
    phases = [r["phase"] for r in run.records]
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order == ["warmup", "churn", "idle", "end"]
    assert phases.count("end") == 1
    times = [r["t"] for r in run.records]
    assert all(a < b for a, b in zip(times, times[1:], strict=False))
    # The same clock as the phase events: the log spans the churn's start to the idle's end.
    assert run.phase_mono_s["churn"] - 0.01 <= times[0] <= run.phase_mono_s["churn"] + 0.5
    assert run.phase_mono_s["idle"] - T_ROUNDING <= _during(run, "idle")[0]["t"]
    assert times[-1] <= run.phase_mono_s["done"] + T_ROUNDING
    # Beats between the phase changes: a 2 s idle logged every 0.5 s. The "end" line may
    # follow a beat closely (the main thread woke late), so only the beats keep the pace.
    idle = [r["t"] for r in _during(run, "idle")]
    gaps = [b - a for a, b in zip(idle, idle[1:], strict=False)]
    assert len(idle) >= 4, gaps
    assert all(0.3 <= gap <= 1.5 for gap in gaps), gaps
    assert 0 < times[-1] - idle[-1] <= 1.5


@pytest.mark.parametrize("name", PARAMS)
def test_the_kernel_sees_the_live_set(stats_runs: Callable[[str], StatsRun], name: str) -> None:
    for record in _during(stats_runs(name), "churn"):
        assert record["kernel"]["Rss_Anon"] >= 0.9 * LIVE  # every page of every buffer written
        if "Pss_Anon" in record["kernel"]:
            assert record["kernel"]["Rss_Anon"] >= record["kernel"]["Pss_Anon"]


def _churn_raw(run: StatsRun) -> list[dict[str, int]]:
    records = _during(run, "churn") + _during(run, "idle")
    assert records
    return [r["internal"]["raw"] for r in records]


def test_jemalloc_counts_the_live_set(stats_runs: Callable[[str], StatsRun]) -> None:
    for raw in _churn_raw(stats_runs("jemalloc")):
        # Size classes round up (4 per doubling), the slot array is small.
        assert 0.9 * LIVE <= raw["stats.allocated"] <= 1.4 * LIVE
        assert raw["stats.allocated"] <= raw["stats.active"] <= raw["stats.mapped"]
        assert raw["stats.resident"] <= raw["stats.mapped"]
        assert raw["stats.arenas.4096.pdirty"] % 4096 == 0  # pages, turned into bytes


def test_glibc_counts_the_live_set(stats_runs: Callable[[str], StatsRun]) -> None:
    for raw in _churn_raw(stats_runs("glibc")):
        in_use = raw["mallinfo2.uordblks"] + raw["mallinfo2.hblkhd"]
        assert 0.9 * LIVE <= in_use <= 1.3 * LIVE
        assert raw["mallinfo2.uordblks"] + raw["mallinfo2.fordblks"] == raw["mallinfo2.arena"]


@pytest.mark.slow  # 3 s, its own logged run; the live count: test_jemalloc_counts_the_live_set
def test_tcmalloc_counts_the_live_set(stats_runs: Callable[[str], StatsRun]) -> None:
    for raw in _churn_raw(stats_runs("tcmalloc")):
        assert 0.9 * LIVE <= raw["generic.current_allocated_bytes"] <= 1.4 * LIVE
        assert raw["generic.heap_size"] >= raw["generic.current_allocated_bytes"]


@pytest.mark.slow  # 3 s each, their own logged runs; the shape: glibc's and jemalloc's
@pytest.mark.parametrize("name", ["mimalloc-v2", "mimalloc-v3"])
def test_mimalloc_reports_its_commit_and_says_why_live_bytes_are_missing(
    stats_runs: Callable[[str], StatsRun], name: str
) -> None:
    run = stats_runs(name)
    for raw in _churn_raw(run):
        assert raw["mi_process_info.current_commit"] >= 0.9 * LIVE
        assert raw["mi_process_info.peak_commit"] >= raw["mi_process_info.current_commit"]
    internal = run.records[-1]["internal"]
    if name == "mimalloc-v3":
        assert internal["raw"]["mi_stats_get_json.committed.current"] >= 0.9 * LIVE
        assert internal["raw"]["mi_stats_get_json.reserved.current"] >= LIVE
    # These release builds count no bytes in use; a build that does would report them.
    live = "mi_stats_get_json.malloc_normal.current"
    if live in internal["raw"]:
        assert 0.9 * LIVE <= internal["raw"][live] <= 1.4 * LIVE
    else:
        assert "MI_STAT" in internal["absent"][live] or "2.0" in internal["absent"][live]


@pytest.mark.slow  # 5 s; whole lines: test_every_line_is_one_whole_record_of_the_documented_shape
def test_runs_append_to_one_log_without_tearing_a_line(
    control_binary: Path, allocator_env: Callable[[str], dict[str, str]], tmp_path: Path
) -> None:
    log = tmp_path / "shared.jsonl"
    log.write_text("")
    first = _run(control_binary, log, allocator_env("glibc"), seconds=0.2)
    second = _run(control_binary, log, allocator_env("glibc"), seconds=0.2)
    pids = [r["pid"] for r in second.records]
    assert first.result["pid"] in pids and second.result["pid"] in pids
    assert pids == sorted(pids, key=[first.result["pid"], second.result["pid"]].index)
    assert [r["phase"] for r in second.records].count("end") == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["--stats-log", "{log}", "--stats-every-s", "0"],
        ["--stats-log", "{log}", "--stats-every-s", "-1"],
        ["--stats-log", "{log}", "--stats-every-s", "soon"],
        ["--stats-log", "{log}", "--stats-every-s", "nan"],
        ["--stats-log", "{log}", "--stats-every-s", "inf"],
        ["--stats-log", "{log}", "--stats-every-s", "1e9"],
        ["--stats-log", "{log}", "--stats-every-s"],
        ["--stats-every-s", "1"],
        ["--stats-log", ""],
    ],
)
def test_bad_stats_options_are_usage_errors(
    control_binary: Path, tmp_path: Path, argv: list[str]
) -> None:
    log = tmp_path / "never.jsonl"
    proc = subprocess.run(
        [str(control_binary), *(a.replace("{log}", str(log)) for a in argv)],
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "usage: churn" in proc.stderr and "--stats-" in proc.stderr
    assert proc.stdout == ""
    assert not log.exists()


def test_an_unwritable_log_fails_before_the_run_and_names_the_file(
    control_binary: Path, tmp_path: Path
) -> None:
    log = tmp_path / "no-such-folder" / "stats.jsonl"
    proc = subprocess.run(
        _command(control_binary, log), env={"PATH": os.environ.get("PATH", "/usr/bin")},
        capture_output=True, text=True, timeout=10, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert str(log) in proc.stderr and "No such file" in proc.stderr
    assert proc.stdout == ""


def test_help_describes_the_stats_options(control_binary: Path) -> None:
    proc = subprocess.run(
        [str(control_binary), "--help"], capture_output=True, text=True, timeout=10, check=False
    )
    assert proc.returncode == 0
    assert "--stats-log FILE" in proc.stdout and "--stats-every-s S" in proc.stdout
    assert "(default 2" in proc.stdout
