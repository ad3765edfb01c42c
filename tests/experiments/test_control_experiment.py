"""One control repeat as the runner makes it: real program, real allocator, real sampler.

Each run churns a 4 MiB live set for 0.3 s and rests about a second, sampled every 0.1 s, so
the file takes a few seconds. The memory group is the procfs fallback (machine.cgroup: none),
which needs no root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.allocators.registry import resolve_for_spec
from bench.experiments.control import ControlRepeat, run_control_repeat
from bench.measure import runstats
from bench.spec import Spec, parse_spec

CPUS = len(os.sched_getaffinity(0))

SPEC = """\
name: control-method
title: The control's method
allocators: [glibc]
service:
  idle_s: 1.0
  settle_window_s: 0.5
  sample_interval_s: 0.1
control:
  threads: 1
  live_bytes: 4194304
  seconds: 0.3
  repeats: 1
machine: {cgroup: none}
"""


def _run(spec: Spec, binary: Path) -> ControlRepeat:
    return run_control_repeat(spec, resolve_for_spec(spec, "glibc"), 0, binary=binary)


def _with_control(**control: object) -> Spec:
    """SPEC with the control keys replaced (a YAML mapping may not repeat a key)."""
    head, body = SPEC.split("control:\n")
    kept = [ln for ln in body.splitlines() if ln.split(":")[0].strip() not in control]
    given = [f"  {k}: {v}" for k, v in control.items()]
    return parse_spec(head + "control:\n" + "\n".join(given + kept) + "\n")


@pytest.fixture(scope="module")
def matched(control_binary: Path) -> ControlRepeat:
    """One thread, the default rest (match-service): the control as the study runs it."""
    return _run(parse_spec(SPEC), control_binary)


def test_control_rests_as_long_as_the_service_by_default(matched: ControlRepeat) -> None:
    row = matched.control_row
    assert row["idle_s"] == 1.0  # echoed by the program: the service's idle_s reached it
    idle = next(p for p in matched.phases if p["phase"] == "idle")
    assert idle["end_s"] - idle["start_s"] == pytest.approx(1.0, abs=0.4)  # not the 5 s default


def test_control_settles_over_the_services_window(matched: ControlRepeat) -> None:
    row, summary = matched.control_row, matched.summary_row
    assert row["settle_window_s"] == 0.5
    idle = next(p for p in matched.phases if p["phase"] == "idle")
    times = [m["t_s"] for m in matched.memory_rows]
    values = [m["anon_bytes"] for m in matched.memory_rows]
    expected = runstats.settled(times, values, idle["end_s"], 0.5)
    assert expected is not None and expected > 4 << 20  # the live set is still held
    assert row["settled_anon_bytes"] == summary["settled_anon_bytes"] == expected
    in_window = [t for t in times if idle["end_s"] - 0.5 <= t <= idle["end_s"]]
    assert len(in_window) >= 3, "the window should hold several samples"


def test_one_thread_following_the_method_raises_no_flag(matched: ControlRepeat) -> None:
    row, summary = matched.control_row, matched.summary_row
    assert row["threads"] == 1 and row["cpus"] == CPUS and row["oversubscribed"] is False
    assert summary["flagged"] is False and summary["flags"] is None


def test_allocs_per_cpu_s_are_recorded_beside_allocs_per_s(matched: ControlRepeat) -> None:
    row, summary = matched.control_row, matched.summary_row
    cpu = row["cpu_user_s"] + row["cpu_sys_s"]
    assert cpu > 0 and row["minor_faults"] >= 0 and row["major_faults"] >= 0
    assert row["allocs_per_cpu_s"] == pytest.approx(row["operations"] / cpu)
    assert summary["allocs_per_cpu_s"] == row["allocs_per_cpu_s"]
    assert summary["allocs_per_s"] == row["allocs_per_s"]
    # One thread on a CPU of its own runs nearly all the time: both rates are close.
    assert row["allocs_per_cpu_s"] >= row["allocs_per_s"] * 0.95


def test_a_shorter_rest_clamps_the_window_and_is_flagged(control_binary: Path) -> None:
    rep = _run(_with_control(idle_s=0.25), control_binary)
    row, summary = rep.control_row, rep.summary_row
    assert row["idle_s"] == 0.25
    assert 0.25 <= row["settle_window_s"] < 0.5  # the whole rest as measured, under the 0.5 s
    assert summary["flagged"] is True
    assert summary["flags"].startswith("rested 0.25 s, less than the service's 1 s (settled over")


def test_share_global_reaches_the_program(control_binary: Path) -> None:
    rep = _run(_with_control(threads=2, share="global", idle_s=0.1), control_binary)
    assert rep.control_row["share"] == "global"  # the program's own echo of --share


def test_the_default_share_is_shard(matched: ControlRepeat) -> None:
    assert matched.control_row["share"] == "shard"


def test_threads_beyond_the_cpus_are_flagged(control_binary: Path) -> None:
    threads = CPUS + 1
    rep = _run(_with_control(threads=threads, idle_s=0.1), control_binary)
    row, summary = rep.control_row, rep.summary_row
    assert row["threads"] == threads and row["cpus"] == CPUS
    assert row["oversubscribed"] is True
    assert summary["flagged"] is True
    flags = summary["flags"].split("; ")
    assert f"{threads} threads on {CPUS} CPU{'s' if CPUS != 1 else ''}" in flags
