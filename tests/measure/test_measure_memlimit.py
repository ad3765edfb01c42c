"""A memory limit on a group: the kernel's counter files of both cgroup versions, parsed; the
limit set on a real cgroup and met by a real program, which the kernel kills."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.experiments.harness import preexec_for
from bench.measure.groups import cgroup_support, create_group
from bench.measure.memlimit import (
    LimitUnavailable,
    apply_limit,
    counters_v1,
    counters_v2,
    limit_bytes,
    parse_keyed,
    read_counters,
    unavailable_reason,
)

V2_EVENTS = "low 0\nhigh 0\nmax 1523\noom 2\noom_kill 2\noom_group_kill 0\n"
V1_OOM_CONTROL = "oom_kill_disable 0\nunder_oom 1\noom_kill 3\n"
UNLIMITED = "9223372036854771712\n"


def test_flat_keyed_files_parse_to_counts_and_skip_what_is_not_a_count():
    assert parse_keyed(V2_EVENTS)["oom_kill"] == 2
    assert parse_keyed("a 1\nb max\n\nc -2\n") == {"a": 1, "c": -2}


def test_v2_counters_come_from_memory_events_current_and_peak():
    got = counters_v2(
        {"memory.events": V2_EVENTS, "memory.current": "104857600\n", "memory.peak": "200\n"}
    )
    assert (got.limit_hits, got.ooms, got.oom_kills) == (1523, 2, 2)
    assert (got.usage_bytes, got.peak_bytes, got.under_oom) == (104857600, 200, None)


def test_v2_without_memory_peak_or_events_reads_as_unknown_not_zero():
    got = counters_v2({"memory.current": "5\n"})
    assert (got.limit_hits, got.oom_kills, got.peak_bytes) == (None, None, None)


def test_v1_counters_come_from_failcnt_and_oom_control():
    got = counters_v1(
        {
            "memory.failcnt": "41\n",
            "memory.oom_control": V1_OOM_CONTROL,
            "memory.usage_in_bytes": "300\n",
            "memory.max_usage_in_bytes": "400\n",
            "memory.memsw.failcnt": "9\n",
            "memory.memsw.limit_in_bytes": UNLIMITED,  # memsw unbounded: its count is not ours
        }
    )
    assert (got.limit_hits, got.oom_kills, got.under_oom) == (41, 3, True)
    assert (got.usage_bytes, got.peak_bytes, got.ooms) == (300, 400, None)


def test_v1_memsw_refusals_count_as_limit_hits_when_memory_and_swap_are_bounded():
    files = {"memory.failcnt": "41\n", "memory.memsw.failcnt": "9\n"}
    assert counters_v1({**files, "memory.memsw.limit_in_bytes": "375000000\n"}).limit_hits == 50


def test_a_kernel_before_4_13_counts_no_oom_kills_in_v1():
    got = counters_v1({"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n"})
    assert (got.oom_kills, got.under_oom) == (None, False)


def test_the_spec_limit_is_in_mb_of_a_million_bytes():
    assert limit_bytes(375) == 375_000_000
    assert limit_bytes(0.5) == 500_000
    assert limit_bytes(None) is None


def test_a_limit_needs_a_cgroup_and_says_so_in_one_line():
    assert unavailable_reason("v1", "v1") is None and unavailable_reason("v2", "v2") is None
    why = unavailable_reason("none", "procfs fallback: no writable memory cgroup")
    assert why is not None and "\n" not in why
    assert why.startswith("service.memory_limit_mb needs a writable memory cgroup")
    with pytest.raises(LimitUnavailable, match="needs a memory cgroup"):
        apply_limit("none", None, 10**8, swap_bytes=lambda: 0)


def _fake_group(tmp_path: Path, files: dict[str, str]) -> Path:
    """A folder with a cgroup's files as plain files: what apply_limit writes, read back."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_v2_limit_is_memory_max_and_swap_is_closed_to_the_service(tmp_path: Path):
    path = _fake_group(tmp_path, {"memory.max": "max\n", "memory.swap.max": "max\n"})
    record = apply_limit("v2", path, 375_000_000, swap_bytes=lambda: 0)
    assert (path / "memory.max").read_text() == "375000000"
    assert (path / "memory.swap.max").read_text() == "0"
    assert record["set"] == {"memory.max": 375_000_000, "memory.swap.max": 0}


def test_v1_bounds_memory_and_swap_only_where_the_machine_has_swap(tmp_path: Path):
    path = _fake_group(
        tmp_path, {"memory.limit_in_bytes": UNLIMITED, "memory.memsw.limit_in_bytes": UNLIMITED}
    )
    record = apply_limit("v1", path, 1 << 27, swap_bytes=lambda: 0)
    assert record["swap"].startswith("off: the machine has no swap")
    assert (path / "memory.memsw.limit_in_bytes").read_text() == UNLIMITED
    record = apply_limit("v1", path, 1 << 27, swap_bytes=lambda: 1 << 30)
    assert (path / "memory.memsw.limit_in_bytes").read_text() == str(1 << 27)
    assert record["set"]["memory.memsw.limit_in_bytes"] == 1 << 27


GROW = "x = [bytearray(1 << 20) for _ in range(400)]"  # 400 MiB, touched


def test_a_program_over_the_limit_of_a_real_cgroup_is_killed_and_counted():
    support = cgroup_support()
    if support.mode == "none":
        pytest.skip(f"no writable memory cgroup here ({support.reason})")
    group = create_group("test-limit")
    try:
        applied = apply_limit(group.mode, group.path, 64 * 2**20, swap_bytes=lambda: 0)
        assert next(iter(applied["set"].values())) == 64 * 2**20  # page-aligned, as asked
        before = read_counters(group.mode, group.path)
        assert before is not None and before.oom_kills in (0, None)
        proc = subprocess.run(
            [sys.executable, "-c", GROW], preexec_fn=preexec_for(group, None), check=False
        )
        assert proc.returncode == -signal.SIGKILL
        after = read_counters(group.mode, group.path)
        assert after is not None
        if after.oom_kills is not None:  # kernels since 4.13 count the kill itself
            assert after.oom_kills == 1
        assert after.peak_bytes is None or after.peak_bytes <= 64 * 2**20
    finally:
        group.close()
