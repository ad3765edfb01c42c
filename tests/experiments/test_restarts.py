"""The restarts of a recycling service as a repeat records them: the rows, the requests that hit
a restarting worker, and the proof that each replacement runs on the allocator."""

from __future__ import annotations

import os
from typing import Any

from bench.allocators.registry import libc_path
from bench.experiments.proof import REPLACEMENT
from bench.experiments.restarts import RestartWatch, requests_hit, restart_rows
from service.recycling import Restart

ORIGIN = 1000.0


def _restart(old: int, new: int, stopped: float, ready: float | None) -> Restart:
    """A restart on the run's clock (seconds after ORIGIN)."""
    return Restart(
        old_pid=old,
        new_pid=new,
        requests=205,
        limit=203,
        stopped=ORIGIN + stopped,
        noticed=ORIGIN + stopped + 0.3,
        ready=None if ready is None else ORIGIN + ready,
        malloc_library="/lib/x.so",
    )


def _row(
    intended: float, done: float | None, worker: int | None, error: str | None = None
) -> dict[str, Any]:
    return {
        "intended_s": intended,
        "done_s": done,
        "worker": worker,
        "error": error,
        "phase": "load",
    }


def test_a_request_hits_a_restart_when_it_fails_or_waits_for_the_replacement_meanwhile():
    restart = _restart(10, 11, stopped=5.0, ready=6.0)
    rows = [
        _row(4.0, 4.01, 10),  # done before the worker stopped
        _row(4.99, 5.02, 10),  # in flight when it stopped, finished by the old worker: fine
        _row(5.1, 5.12, 12),  # answered by another worker meanwhile: fine
        _row(5.2, 5.21, None, "ServerDisconnectedError: closed"),  # a closed connection
        _row(5.5, 6.05, 11),  # waited in the socket's queue for the replacement
        _row(4.5, None, None, "cancelled"),  # never finished: in flight all along
        _row(6.5, 6.51, 11),  # after the replacement was ready: fine
        _row(6.2, 6.3, None, "ClientConnectorError: refused"),  # failed after: not this one
    ]
    assert requests_hit(rows, [restart], ORIGIN) == [3]


def test_a_replacement_not_yet_ready_keeps_its_window_open():
    restart = _restart(10, 11, stopped=5.0, ready=None)
    rows = [_row(9.0, 9.5, 11), _row(9.0, 9.1, None, "timeout")]
    assert requests_hit(rows, [restart], ORIGIN) == [2]


def test_rows_carry_pids_counts_and_times_and_a_request_is_counted_once():
    first = _restart(10, 11, stopped=5.0, ready=6.0)
    second = _restart(20, 21, stopped=5.5, ready=6.5)
    rows = [
        _row(5.6, 5.7, None, "reset"),  # inside both windows
        _row(6.2, 6.6, 21),  # the second replacement's
        {**_row(5.6, 5.7, None, "reset"), "phase": "idle"},  # not a load request
    ]
    table, during = restart_rows(
        [first, second],
        origin=ORIGIN,
        allocator="glibc-recycled",
        repeat=0,
        request_rows=rows,
        phase_at=lambda t: "load" if t > 3 else "warmup",
    )
    assert during == 2
    assert [r["requests_hit"] for r in table] == [1, 2]
    assert table[0] == {
        "allocator": "glibc-recycled",
        "repeat": 0,
        "t_s": 5.0,
        "phase": "load",
        "old_pid": 10,
        "new_pid": 11,
        "requests": 205,
        "limit": 203,
        "replaced_s": 5.3,
        "ready_s": 6.0,
        "requests_hit": 1,
    }


def test_no_restarts_no_rows():
    assert restart_rows(
        [], origin=ORIGIN, allocator="a", repeat=0, request_rows=[_row(1, 2, 3)], phase_at=str
    ) == ([], 0)


def test_the_watch_proves_each_replacement_once_from_its_own_report_and_maps():
    libc = libc_path()
    watch = RestartWatch(libc, repeat=1)
    me = os.getpid()  # a process that runs on libc and maps it, standing in for a worker
    ready = Restart(10, me, 205, 203, 1.0, 1.2, 1.5, libc)
    starting = Restart(12, 13, 205, 203, 1.0, 1.2, None, None)
    assert watch.check([ready, starting]) is None
    assert watch.check([ready, starting]) is None
    assert watch.evidence == [
        {
            "repeat": 1,
            "pid": me,
            "role": REPLACEMENT,  # one role for a replacement, however it was found
            "replaces": 10,
            "malloc_library": libc,
            "mapped": True,
        }
    ]


def test_a_replacement_proven_already_is_not_proven_again():
    """One proof per replacement: a worker that answered /stats first (prove_replacements)
    is not proven a second time when its restart shows up in the supervisor's log."""
    libc = libc_path()
    watch = RestartWatch(libc, repeat=1)
    ready = Restart(10, os.getpid(), 205, 203, 1.0, 1.2, 1.5, libc)
    assert watch.check([ready], known=[os.getpid()]) is None
    assert watch.evidence == []


def test_a_replacement_on_another_library_is_a_problem_that_names_it():
    watch = RestartWatch("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", repeat=0)
    wrong = Restart(10, os.getpid(), 205, 203, 1.0, 1.2, 1.5, libc_path())
    problem = watch.check([wrong])
    assert problem is not None
    assert problem.startswith(f"replacement worker {os.getpid()} (for 10) is not on the allocator")
    assert libc_path() in problem
