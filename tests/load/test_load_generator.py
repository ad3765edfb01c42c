"""bench.load.generator against real loopback HTTP servers, as its own process and in-process."""

from __future__ import annotations

import asyncio
import math
import signal
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from loadgen_support import free_port, load_config, loopback_server, rows_of, run_loadgen

from bench.load.config import LoadConfig, body_pools
from bench.load.generator import LoadGenerator
from bench.load.handle import start_loadgen, wait_loadgen
from bench.measure.runstats import percentile


def lateness(rows: list[dict]) -> list[float]:
    return [r["sent_s"] - r["intended_s"] for r in rows if r["sent_s"] is not None]


def run_in_process(config: LoadConfig) -> LoadGenerator:
    generator = LoadGenerator(config, body_pools(config))
    asyncio.run(generator.run())
    return generator


def test_rate_times_duration_requests_on_an_exact_schedule(
    fast_server: str, tmp_path: Path
) -> None:
    config = load_config(fast_server, 100, 3, allocator="jemalloc", repeat=1)
    handle = start_loadgen(config, tmp_path / "requests.arrow")
    time.sleep(2.5)
    progress = handle.progress()
    summary = wait_loadgen(handle, timeout=60)
    rows = rows_of(tmp_path / "requests.arrow")

    assert len(rows) == summary.requests == 300
    assert sum(r["status"] == 200 for r in rows) >= 298
    first = rows[0]["intended_s"]
    assert first == pytest.approx(summary.t0_s, abs=1e-9)
    assert all(
        r["intended_s"] == pytest.approx(first + i / 100, abs=1e-9) for i, r in enumerate(rows)
    )
    assert all(r["sent_s"] >= r["intended_s"] for r in rows)
    # latency counts from the intended time, so it includes the send lateness
    assert all(r["done_s"] - r["intended_s"] >= r["done_s"] - r["sent_s"] for r in rows)
    assert {(r["allocator"], r["repeat"], r["phase"]) for r in rows} == {("jemalloc", 1, "load")}
    assert {r["endpoint"] for r in rows} == {"churn", "json", "xml"}
    assert summary.stages[0].achieved_rps == pytest.approx(100, rel=0.01)
    # on schedule, by a margin no busy machine breaks (a broken schedule is seconds late);
    # how closely is benchmarks/loadgen_fidelity.py's to measure, on a quiet machine
    assert summary.late_ms_p50 is not None and summary.late_ms_p50 < 1000
    assert progress is not None and progress.sent > 0 and progress.phase == "load"
    assert not handle.workdir.exists()  # config, log and progress are cleaned up


def test_slow_responses_do_not_delay_the_sends(slow_server: str, tmp_path: Path) -> None:
    summary, rows = run_loadgen(load_config(slow_server, 50, 2), tmp_path / "r.arrow")
    assert len(rows) == 100 and all(r["status"] == 200 for r in rows)
    assert all(r["done_s"] - r["intended_s"] >= 0.3 for r in rows)
    # a closed loop would send each request after the previous answer: the n-th 0.3 s x n
    # late, the last about 30 s; open, the lateness does not add up (margins no busy 2-core
    # machine breaks: how late the sends are is benchmarks/loadgen_fidelity.py's to measure)
    late = lateness(rows)
    assert percentile(late, 50) < 1.0 and max(late) < 5.0
    # open loop: while the first response was still pending, the next ones went out
    assert sum(r["sent_s"] < rows[0]["done_s"] for r in rows) >= 5
    assert summary.stages[0].achieved_rps == pytest.approx(50, rel=0.01)


def test_a_closed_port_gives_rows_with_status_0(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    summary, rows = run_loadgen(load_config(url, 20, 1), tmp_path / "r.arrow")
    assert len(rows) == 20 and summary.errors == 20 and summary.ok == 0
    assert all(r["status"] == 0 and "Connect" in r["error"] for r in rows)
    assert all(r["done_s"] is not None for r in rows)
    assert summary.stages[0].achieved_rps == 0


def test_a_server_killed_mid_run_turns_into_transport_errors(tmp_path: Path) -> None:
    with loopback_server() as (url, server):
        config = load_config(url, 40, 2.5, start_at=time.monotonic() + 1.0)
        handle = start_loadgen(config, tmp_path / "r.arrow")
        time.sleep(max(0.0, config.start_at + 1.0 - time.monotonic()))
        killing_s = time.monotonic() - config.origin
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        killed_s = time.monotonic() - config.origin
        summary = wait_loadgen(handle, timeout=60)
    rows = rows_of(tmp_path / "r.arrow")
    assert len(rows) == 100
    # by the clocks of the kill, not the schedule: either process may run late on a busy machine
    before = [r for r in rows if r["done_s"] is not None and r["done_s"] < killing_s]
    after = [r for r in rows if r["intended_s"] > killed_s + 0.1]
    assert before and all(r["status"] == 200 for r in before)
    assert after and all(r["status"] == 0 and r["error"] for r in after)
    assert summary.errors == sum(r["status"] != 200 for r in rows)


@pytest.mark.parametrize(
    "stop",
    [signal.SIGTERM, pytest.param(signal.SIGHUP, marks=pytest.mark.slow)],  # the same path
    ids=lambda s: s.name,
)
def test_sigterm_or_a_hangup_mid_run_writes_the_rows_so_far_and_exits_promptly(
    stop: signal.Signals, slow_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.arrow"
    # 2 s to start in: a busy machine may take more than one to import the generator
    config = load_config(slow_server, 50, 30, start_at=time.monotonic() + 2.0)
    # the child inherits an ignored signal (a suite started under nohup ignores SIGHUP, and
    # the generator rightly keeps it ignored): give it the default disposition explicitly
    before = signal.signal(stop, signal.SIG_DFL)
    try:
        handle = start_loadgen(config, out)
    finally:
        signal.signal(stop, before)
    time.sleep(max(0.0, config.start_at + 1.0 - time.monotonic()))
    stopped = time.monotonic()
    handle.proc.send_signal(stop)  # handle.stop() sends SIGTERM; a lost terminal, SIGHUP
    summary = wait_loadgen(handle, timeout=30)
    assert time.monotonic() - stopped < 10  # not the 30 s planned
    assert summary.stopped_by == stop.name
    rows = rows_of(out)
    elapsed = summary.stages[0].elapsed_s
    assert 0.5 < elapsed < 5  # about one second, not the 30 planned
    assert abs(len(rows) - 50 * elapsed) <= 10  # a row for every request that came due
    cancelled = [r for r in rows if r["error"] == "cancelled"]
    assert len(cancelled) == summary.cancelled >= 5  # 0.3 s of sends were still in flight
    assert all(r["status"] == 0 and r["done_s"] is None for r in cancelled)
    assert all(r["status"] == 200 for r in rows if r["error"] is None)


def test_a_second_stop_while_the_rows_are_written_does_not_lose_them(
    slow_server: str, tmp_path: Path
) -> None:
    """A hang-up reaches the runner's whole process group, generator included, and the runner
    then stops the generator with SIGTERM: the second signal comes while the rows are being
    written, after the event loop (and its handlers) are gone."""
    out = tmp_path / "r.arrow"
    config = load_config(slow_server, 50, 30, start_at=time.monotonic() + 2.0)
    handle = start_loadgen(config, out)
    time.sleep(max(0.0, config.start_at + 1.0 - time.monotonic()))
    handle.proc.send_signal(signal.SIGTERM)
    while handle.proc.poll() is None:  # stop again and again until it has exited
        handle.proc.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    summary = wait_loadgen(handle, timeout=30)
    assert summary.stopped_by == "SIGTERM"
    assert len(rows_of(out)) >= 25  # about a second of sends at 50 a second


def test_overload_drops_are_rows_never_silence(slow_server: str) -> None:
    config = load_config(slow_server, 40, 0.5, max_in_flight=3)
    record = run_in_process(config).record
    assert len(record) == 20
    dropped = [i for i in range(20) if record.errors.get(i) == "overload"]
    assert len(dropped) >= 10
    assert all(math.isnan(record.sent[i]) and record.status[i] == 0 for i in dropped)
    assert all(record.status[i] == 200 for i in range(20) if i not in dropped)


def test_a_request_past_its_timeout_is_a_transport_error(slow_server: str) -> None:
    generator = run_in_process(load_config(slow_server, 10, 0.5, timeout_s=0.1))
    record = generator.record
    assert len(record) == 5
    assert all(s == 0 for s in record.status)
    assert all(e.startswith("timeout") for e in record.errors.values())
    waited = [record.done[i] - record.sent[i] for i in range(5)]
    assert all(0.09 <= w < 1.0 for w in waited)  # the server answers at 0.3 s (then: a 200)


def test_warm_connections_are_open_before_the_schedule_starts() -> None:
    with loopback_server() as (url, _):
        run_in_process(load_config(url, 10, 0.3, warm_connections=6))
        with urllib.request.urlopen(url + "/peers", timeout=5) as response:
            peers = int(response.read())
    assert peers >= 6


def test_the_real_service_accepts_every_request(tmp_path: Path) -> None:
    """The service's own bodies, content types and paths: every request answered 200."""
    from service import launcher  # first-party: a broken launcher fails, never skips

    churn = {"live_buffers": 200, "min_bytes": 4096, "max_bytes": 16384, "alloc_per_call": 25}
    port = free_port()
    service = launcher.start_service(
        python=sys.executable, workers=1, port=port, env={}, service_config={"churn": churn}
    )
    try:
        config = load_config(
            f"http://127.0.0.1:{port}", 60, 1, payload={"kind": "service"}, pool_size=8
        )
        summary, rows = run_loadgen(config, tmp_path / "r.arrow")
    finally:
        service.stop()
    assert len(rows) == 60
    assert all(r["status"] == 200 for r in rows), summary.error_kinds
    churn_rows = [r for r in rows if r["endpoint"] == "churn"]
    workers = {r["worker"] for r in churn_rows}
    assert churn_rows and len(workers) == 1 and None not in workers  # its one worker's pid
    live = [r["live_bytes"] for r in sorted(churn_rows, key=lambda r: r["done_s"])]
    assert live[-1] > live[0]  # the worker's live payload, recorded request by request
    # every answer names its worker and the live payload it holds, /json and /xml included
    assert all(r["worker"] in workers and r["live_bytes"] is not None for r in rows)


def test_an_idle_stage_sends_its_own_mix_and_leaves_the_loads_sequence_alone() -> None:
    with loopback_server() as (url, _):
        plain = run_in_process(load_config(url, 100, 0.5, seed=5))
        idle = {"phase": "idle", "rate": 20, "duration_s": 0.5, "mix": {"health": 1}}
        config = load_config(url, 100, 0.5, seed=5)
        both = run_in_process(
            config.model_copy(
                update={"stages": [*config.stages, config.stages[0].__class__(**idle)]}
            )
        )
    rows = both.record.rows(0.0, None, None)
    phases, endpoints = rows["phase"], rows["endpoint"]
    load_seq = [e for p, e in zip(phases, endpoints, strict=True) if p == "load"]
    idle_seq = [e for p, e in zip(phases, endpoints, strict=True) if p == "idle"]
    assert load_seq == plain.record.rows(0.0, None, None)["endpoint"]
    assert idle_seq == ["health"] * 10


def test_a_generator_started_early_waits_for_its_go_on_stdin(
    fast_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "r.arrow"
    handle = start_loadgen(load_config(fast_server, 50, 1.0, start_on_stdin=True), out)
    time.sleep(1.0)  # ready and waiting: nothing may be sent before the go
    assert handle.proc.poll() is None
    start_at = time.monotonic() + 3.0  # room to finish starting on a busy machine
    handle.go(start_at)
    summary = wait_loadgen(handle, timeout=60)
    rows = rows_of(out)
    assert len(rows) == 50 and summary.start_late_s == 0.0
    assert min(r["sent_s"] for r in rows) >= min(r["intended_s"] for r in rows)
    assert summary.t0_s == pytest.approx(start_at - handle.config.origin, abs=1e-6)


def test_a_generator_never_told_to_go_stops_unstarted(fast_server: str, tmp_path: Path) -> None:
    out = tmp_path / "r.arrow"
    handle = start_loadgen(load_config(fast_server, 50, 1.0, start_on_stdin=True), out)
    time.sleep(0.5)
    started = time.monotonic()
    handle.close()
    assert time.monotonic() - started < 15
    assert handle.proc.returncode == 0  # it stopped by itself; close() kills only after 5 s
    assert not handle.workdir.exists()
