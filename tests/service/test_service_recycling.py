"""Worker recycling: the jittered limit, the log lines of a restart, and the real supervisor
replacing workers that reached their limit (a recycle is never reported as a death)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from service_support import SMALL_CONFIG, expected_library, running, start, wait_gone

from service.config import ConfigError, ServiceConfig
from service.launcher import ServiceProcess
from service.recycling import (
    Ready,
    Recycled,
    Restart,
    Retired,
    event_line,
    parse_event,
    request_limit,
    restarts,
)

# ------------------------------------------------------------------------------ the limit


def test_no_max_requests_means_no_limit():
    assert request_limit(None, 50, seed=1, slot=0, generation=0) is None


def test_without_jitter_every_worker_gets_max_requests():
    assert {
        request_limit(200, 0, seed=1, slot=s, generation=g) for s in range(4) for g in range(5)
    } == {200}


def test_the_jittered_limit_is_uniform_over_n_to_n_plus_jitter_inclusive():
    draws = [
        request_limit(200, 10, seed=1, slot=slot, generation=g)
        for slot in range(4)
        for g in range(500)
    ]
    assert min(draws) == 200 and max(draws) == 210  # both ends reachable
    counts = [draws.count(v) for v in range(200, 211)]
    assert all(100 < c < 270 for c in counts), counts  # 2000 draws over 11 values: ~182 each


def test_the_limit_is_reproducible_and_differs_between_workers_and_generations():
    one = [
        request_limit(2000, 200, seed=7, slot=s, generation=g) for s in range(4) for g in range(3)
    ]
    assert one == [
        request_limit(2000, 200, seed=7, slot=s, generation=g) for s in range(4) for g in range(3)
    ]
    assert len(set(one)) > 6  # twelve workers, 201 possible limits: not all alike
    other_seed = [
        request_limit(2000, 200, seed=8, slot=s, generation=g) for s in range(4) for g in range(3)
    ]
    assert other_seed != one


def test_the_service_config_checks_the_recycling_keys():
    config = ServiceConfig.from_dict({"max_requests": 100, "max_requests_jitter": 10})
    assert (config.max_requests, config.max_requests_jitter) == (100, 10)
    assert ServiceConfig.from_dict({}).max_requests is None
    for bad in ({"max_requests": 0}, {"max_requests": True}, {"max_requests_jitter": -1}):
        with pytest.raises(ConfigError, match="max_requests"):
            ServiceConfig.from_dict(bad)


# ------------------------------------------------------------------------------ the log lines


def test_each_event_reads_back_from_its_line():
    for event in (
        Retired(10, 205, 203, 12.5),
        Recycled(10, 11, 0, 12.9),
        Ready(11, 13.2, "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
        Ready(11, 13.2, None),
    ):
        assert parse_event(event_line(event)) == event


@pytest.mark.parametrize(
    "line",
    ["worker-exit {}", "worker-retired {not json", 'worker-ready {"pid": 1}', "", "hello"],
)
def test_other_or_damaged_lines_are_no_event(line: str):
    assert parse_event(line) is None


def test_restarts_join_the_three_lines_by_pid():
    events = [
        Ready(10, 1.0, "/lib/a.so"),
        Retired(10, 52, 50, 5.0),
        Recycled(10, 11, 0, 5.4),
        Ready(11, 5.8, "/lib/a.so"),
        Recycled(12, 13, 0, 7.0),  # its worker's line is missing, and its replacement's
    ]
    assert restarts(events) == [
        Restart(10, 11, 52, 50, 5.0, 5.4, 5.8, "/lib/a.so"),
        Restart(12, 13, None, None, 7.0, 7.0, None, None),
    ]


# ------------------------------------------------------------------------------ the real thing


def _churn(port: int) -> dict[str, Any] | None:
    """One /churn on a fresh connection (the kernel picks the worker): its answer, or None
    when the connection was closed under it (a worker that stops closes the connections it
    accepted but has not read a request from yet, as uvicorn does)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", "/churn", body=b"", headers={"Connection": "close"})
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    except (ConnectionResetError, http.client.RemoteDisconnected):
        return None
    finally:
        conn.close()


def _wait_restarts(service: ServiceProcess, count: int, timeout: float = 30) -> None:
    """Until `count` restarts are in the log and every replacement so far is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = service.restarts()
        if len(found) >= count and all(r.ready is not None for r in found):
            return
        time.sleep(0.1)


def test_workers_are_replaced_after_their_limit_and_each_restart_is_recorded(tmp_path: Path):
    # the start-up checks (/health, /stats until every worker answered) count too. Limits of
    # 30-35 (uvicorn notices within 0.1 s: up to 40) make 4 restarts certain in 200 requests
    # however the kernel spreads them over the two workers: floor(a/40) + floor(b/40) >= 4
    # for a + b = 200 (with 40-45 a spread of 120/80 gave 3, once in a while)
    config = dict(SMALL_CONFIG, workers=2, max_requests=30, max_requests_jitter=5)
    log = tmp_path / "service.log"
    service = start("jemalloc", workers=2, service_config=config, log_path=log)
    first = service.worker_pids()
    tries = 200
    try:
        answers = []
        for _ in range(tries):  # 50 requests a second: uvicorn checks its count every 0.1 s
            if (answer := _churn(service.port)) is not None:
                answers.append(answer)
            time.sleep(0.02)
        _wait_restarts(service, 4)
        found = service.restarts()
        assert service.worker_exits() == []  # a recycle is not a death
        seen = service.worker_pids()
        assert len(seen) == 2
    finally:
        service.stop()
    assert len(found) >= 4
    assert len(answers) > 0.9 * tries  # a few may meet a stopping worker, no more
    library = expected_library("jemalloc")
    for r in found:
        assert r.old_pid != r.new_pid
        assert r.limit is not None and 30 <= r.limit <= 35
        assert r.requests is not None and r.limit <= r.requests  # it served its limit
        assert r.stopped <= r.noticed and r.ready is not None and r.noticed <= r.ready
        assert r.malloc_library is not None
        assert os.path.realpath(r.malloc_library) == library  # the replacement is preloaded
    assert {r.old_pid for r in found[:2]} == set(first)
    replacements = {r.new_pid for r in found}
    served = {a["pid"] for a in answers}
    assert served & replacements  # replacements served
    # a replacement starts its live set afresh: its first answer counts one call
    for pid in replacements & served:
        calls = [a["calls"] for a in answers if a["pid"] == pid]
        assert calls[0] == 1 and calls == sorted(calls)
    assert {a["worker"] for a in answers} == {0, 1}  # slots are reused, not grown
    assert wait_gone([*first, *replacements, service.pid]) == []
    assert service.worker_exits() == [] and service.restarts() == found  # the stop added none


def test_a_worker_killed_in_a_recycling_service_is_still_a_death(tmp_path: Path):
    config = dict(SMALL_CONFIG, workers=2, max_requests=1000)
    service = start("glibc", workers=2, service_config=config, log_path=tmp_path / "log")
    try:
        victim = service.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while not service.worker_exits() and time.monotonic() < deadline:
            time.sleep(0.05)
        (gone,) = service.worker_exits()
        assert (gone.pid, gone.signal_name) == (victim, "SIGKILL")
        assert service.restarts() == []
    finally:
        service.stop()
    assert not running(victim)
