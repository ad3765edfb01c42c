"""The idle stage's probes reach every worker of the real service in turn (`probe_workers`).

At a few probes a second the shared connection pool hands them all to one worker (measured
in a quick study: 14 of 14 on one of 4 workers), and the synthetic service frees a worker's
expired buffers only at its next request. These runs start the real service with 4 workers and
read, from the `worker` column of the rows, which worker answered each probe.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loadgen_support import run_loadgen
from service_support import start

from bench.load.config import LoadConfig, body_pools
from bench.load.generator import PIN_LEAD_S, LoadGenerator
from bench.spec import ServiceSpec
from service.launcher import ServiceProcess

WORKERS = 4
REQUEST_LOG_SERVER = Path(__file__).with_name("requestlog_server.py")


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    """The real synthetic service, 4 workers, each on its own SO_REUSEPORT socket."""
    svc = start("glibc", workers=WORKERS)
    try:
        yield svc
    finally:
        svc.stop()


def plan(service: ServiceProcess, load_s: float, **extra: Any) -> LoadConfig:
    """A light /churn load, then 2 s of idle probes at 4/s: 8 probes, 2 per worker when
    rotated."""
    stages = [{"phase": "idle", "rate": 4, "duration_s": 2, "mix": {"health": 1}}]
    if load_s > 0:
        stages.insert(0, {"phase": "load", "rate": 40, "duration_s": load_s})
    return LoadConfig.model_validate(
        {
            "base_url": f"http://127.0.0.1:{service.port}",
            "stages": stages,
            "mix": {"churn": 1},  # no body, so "minimal" payloads are never sent
            "payload": {"kind": "minimal"},
            "warm_connections": 16 * WORKERS,
            "origin": time.monotonic(),
            **extra,
        }
    )


def probe_workers(rows: list[dict[str, Any]]) -> Counter[int]:
    """How many idle probes each worker answered (all of them answered, with their pid)."""
    probes = [r for r in rows if r["phase"] == "idle"]
    assert probes and all(r["status"] == 200 and r["worker"] is not None for r in probes)
    return Counter(r["worker"] for r in probes)


@pytest.mark.slow  # 10 s; pinned probes: the tests below on the same service
def test_probes_after_a_load_rotate_over_every_worker(
    service: ServiceProcess, tmp_path: Path
) -> None:
    """The study's case: the idle stage starts after the load, more than PIN_LEAD_S after t0,
    so the per-worker connections are opened during the load, just before the probes."""
    load_s = PIN_LEAD_S + 1
    summary, rows = run_loadgen(plan(service, load_s, probe_workers=WORKERS), tmp_path / "r.arrow")
    counts = probe_workers(rows)
    assert summary.probe_workers_pinned == WORKERS
    assert len(counts) == WORKERS, counts  # every worker, not one
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    assert sum(counts.values()) == 8
    assert summary.errors == 0, summary.error_kinds
    assert summary.stages[0].requests == 40 * load_s  # the load is as it was


def test_an_idle_stage_at_the_start_is_pinned_before_t0(
    service: ServiceProcess, tmp_path: Path
) -> None:
    summary, rows = run_loadgen(plan(service, 0, probe_workers=WORKERS), tmp_path / "r.arrow")
    counts = probe_workers(rows)
    assert summary.probe_workers_pinned == WORKERS
    assert sorted(counts.values()) == [2, 2, 2, 2], counts
    # the connections were ready at t0: no probe waited for them
    assert summary.late_ms_max is not None and summary.late_ms_max < 500


def test_probe_workers_0_keeps_the_shared_pool(service: ServiceProcess, tmp_path: Path) -> None:
    summary, rows = run_loadgen(plan(service, 0), tmp_path / "r.arrow")
    assert summary.probe_workers_pinned == 0
    assert sum(probe_workers(rows).values()) == 8
    assert summary.errors == 0


def test_workers_not_reached_are_said_and_the_probes_keep_those_reached(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A one-process server names one pid: 3 workers asked, 1 reached, a line on stderr."""
    server = subprocess.Popen(
        [sys.executable, str(REQUEST_LOG_SERVER), str(tmp_path / "log.jsonl")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        config = LoadConfig.model_validate(
            {
                "base_url": f"http://127.0.0.1:{port}",
                "stages": [{"phase": "idle", "rate": 20, "duration_s": 0.3, "mix": {"health": 1}}],
                "mix": {"churn": 1},
                "payload": {"kind": "minimal"},
                "probe_workers": 3,
            }
        )
        generator = LoadGenerator(config, body_pools(config))
        asyncio.run(generator.run())
    finally:
        server.kill()
        server.wait(timeout=10)
    assert generator.pins.pids == [server.pid]
    assert "idle probes pinned to 1 of 3 workers" in capsys.readouterr().err
    assert list(generator.record.worker) == [server.pid] * 6


def test_a_spec_with_idle_traffic_pins_its_probes_to_every_worker() -> None:
    url = "http://127.0.0.1:9"
    assert LoadConfig.from_service_spec(ServiceSpec(workers=3), base_url=url).probe_workers == 3
    silent = ServiceSpec(workers=3, idle_rate=0)
    assert LoadConfig.from_service_spec(silent, base_url=url).probe_workers == 0
