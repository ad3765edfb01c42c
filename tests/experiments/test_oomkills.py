"""Which worker deaths are the memory limit's: the rule alone, then the watch over a repeat's
counters (read through a stand-in, so each case sets exactly what the kernel would say)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bench.experiments import oomkills
from bench.experiments.oomkills import LimitWatch, classify
from bench.measure.memlimit import LimitCounters
from service.workerexits import WorkerExit

KILL = -signal.SIGKILL


def _gone(pid: int = 7, exitcode: int | None = KILL, *, hung: bool = False, at: float = 0.0):
    return WorkerExit(pid=pid, exitcode=exitcode, noticed=at, hung=hung)


def test_a_sigkill_the_kernel_counted_is_an_oom_kill():
    assert classify(_gone(), unclaimed_oom_kills=1, at_limit=False) == "oom_kill"


def test_a_crash_is_never_the_limits_whatever_the_memory():
    for code in (-signal.SIGSEGV, -signal.SIGABRT, 1, 0):
        assert classify(_gone(exitcode=code), unclaimed_oom_kills=1, at_limit=True) is None


def test_a_sigkill_with_no_kill_counted_and_no_limit_met_is_not_the_limits():
    assert classify(_gone(), unclaimed_oom_kills=0, at_limit=False) is None


def test_a_sigkill_at_the_limit_is_the_limits_where_the_kernel_counts_no_kills():
    assert classify(_gone(), unclaimed_oom_kills=0, at_limit=True) == "at_limit"


def test_a_worker_killed_for_hanging_at_the_limit_is_the_limits_but_no_oom_kill():
    assert classify(_gone(hung=True), unclaimed_oom_kills=0, at_limit=True) == "at_limit"
    assert classify(_gone(hung=True), unclaimed_oom_kills=0, at_limit=False) is None


def test_a_worker_reported_hung_whose_kill_the_kernel_counted_is_an_oom_kill():
    # stalled in reclaim, it missed the supervisor's health check; the kernel killed it
    assert classify(_gone(hung=True), unclaimed_oom_kills=1, at_limit=True) == "oom_kill"


def test_a_plain_death_claims_the_counted_kill_before_a_hung_one(kernel: _Kernel):
    watch = _watch()
    kernel.set(oom_kills=1)  # one kill counted, the limit not met lately
    now = time.monotonic()
    hung, dead = _gone(21, hung=True, at=now - 0.1), _gone(22, at=now)
    assert watch.sort([hung, dead], "load") == [hung]
    assert [(d.pid, d.cause) for d in watch.deaths] == [(22, "oom_kill")]


class _Kernel:
    """The counters a stand-in kernel reports, changed by each test as a run would."""

    def __init__(self) -> None:
        self.now = LimitCounters(limit_hits=0, oom_kills=0, usage_bytes=0, peak_bytes=0)

    def set(self, **changes: int) -> None:
        self.now = LimitCounters(**{**self.now.as_record(), **changes})


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> _Kernel:
    k = _Kernel()
    monkeypatch.setattr(oomkills, "read_counters", lambda mode, path: k.now)
    return k


def _watch(limit: int | None = 100) -> LimitWatch:
    watch = LimitWatch("v1", Path("/nonexistent"), limit, origin=time.monotonic() - 10)
    watch.snapshot("launch")
    return watch


def test_without_a_limit_every_death_stays_a_failure(kernel: _Kernel):
    watch = _watch(limit=None)
    kernel.set(oom_kills=1)
    deaths = [_gone(at=time.monotonic())]
    assert watch.sort(deaths, "load") == deaths
    assert watch.summary()["oom_kills"] is None and watch.record(0, None) is None


def test_one_counted_kill_claims_one_death_and_the_other_fails(kernel: _Kernel):
    watch = _watch()
    watch.snapshot("load")
    kernel.set(oom_kills=1)  # one kill counted, no limit hit: the second SIGKILL is not its
    now = time.monotonic()
    a, b = _gone(11, at=now), _gone(12, at=now)
    assert watch.sort([a, b], "load") == [b]
    assert [(d.pid, d.cause, d.phase) for d in watch.deaths] == [(11, "oom_kill", "load")]
    assert watch.sort([a, b], "idle") == [b]  # judged once: a stays the limit's
    assert len(watch.deaths) == 1


def test_kills_are_counted_from_the_launch_not_from_zero(kernel: _Kernel):
    kernel.set(oom_kills=5)  # an older count the fresh group cannot have, but a reused one may
    watch = _watch()
    first = _gone(7, at=time.monotonic())
    assert watch.sort([first], "load") == [first]  # no kill since the launch: a failure
    kernel.set(oom_kills=6)
    assert watch.sort([first, _gone(8, at=time.monotonic())], "load") == [first]
    assert [d.pid for d in watch.deaths] == [8]


def test_a_death_noticed_late_is_put_in_the_phase_it_happened_in(kernel: _Kernel):
    watch = _watch()
    watch.snapshot("load")
    t_load = watch.snapshots[-1]["t_s"]
    time.sleep(0.01)
    watch.snapshot("idle")
    kernel.set(oom_kills=1)
    watch.sort([_gone(at=watch.origin + t_load + 0.001)], "idle")
    assert watch.deaths[0].phase == "load"


def test_the_summary_counts_kills_first_kill_hits_and_charged_peak(kernel: _Kernel):
    watch = _watch()
    kernel.set(oom_kills=2, limit_hits=40, peak_bytes=99)
    now = time.monotonic()
    watch.sort([_gone(1, at=now - 1), _gone(2, at=now)], "load")
    watch.snapshot("end")
    summary = watch.summary()
    assert summary["memory_limit_bytes"] == 100
    assert summary["oom_kills"] == 2 and summary["limit_hits"] == 40
    assert summary["first_oom_s"] == pytest.approx(9.0, abs=0.05)
    assert summary["peak_charged_bytes"] == 99
    assert watch.flags()[0].startswith("worker 1 was OOM-killed 9.0 s into the run (load)")
    record = watch.record(0, {"limit_bytes": 100, "mode": "v1"})
    assert record is not None and [d["pid"] for d in record["deaths"]] == [1, 2]
    assert [s["at"] for s in record["counters"]] == ["launch", "end"]


def test_a_startup_failure_under_a_limit_names_the_limit_and_its_kills(kernel: _Kernel):
    watch = _watch(limit=375_000_000)
    kernel.set(oom_kills=3)
    assert watch.startup_note() == (
        " (under a memory limit of 375 MB; the kernel OOM-killed 3 of its processes)"
    )
