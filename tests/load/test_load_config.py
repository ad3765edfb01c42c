"""bench.load.config and bench.load.record without a network: config, loopback guard, bodies,
record and summary."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bench.load.config import (
    ENDPOINTS,
    LoadConfig,
    LoadgenError,
    PayloadConfig,
    body_pools,
    check_loopback,
)
from bench.load.record import Record, summarize
from bench.load.schedule import Stage
from bench.spec import PayloadSpec, ServiceSpec

ROOT = Path(__file__).resolve().parents[2]


def config(**extra: object) -> LoadConfig:
    base = {
        "base_url": "http://127.0.0.1:8000",
        "stages": [{"phase": "load", "rate": 200, "duration_s": 10}],
        "mix": {"churn": 2, "json": 1, "xml": 1},
    }
    return LoadConfig.model_validate({**base, **extra})


# -- loopback only --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000",
        "http://127.3.4.5:1/",
        "http://[::1]:8000",
        "http://localhost:8000",
    ],
)
def test_loopback_urls_are_accepted(url: str) -> None:
    assert check_loopback(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:8000",
        "http://10.0.0.1:8000",
        "http://0.0.0.0:8000",
        "http://[::ffff:127.0.0.1]:80",
        "http://localhost.example.com",
        "http://",
    ],
)
def test_a_non_loopback_url_is_refused_with_a_clear_error(url: str) -> None:
    with pytest.raises(LoadgenError, match="not loopback"):
        check_loopback(url)


def test_only_plain_http_is_spoken() -> None:
    with pytest.raises(LoadgenError, match="plain http"):
        check_loopback("https://127.0.0.1:8443")


def test_a_config_with_a_remote_url_does_not_validate() -> None:
    with pytest.raises(ValidationError, match="not loopback"):
        config(base_url="http://192.168.1.10:8000")


def test_the_process_refuses_a_remote_url_before_sending_anything(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(
        '{"base_url": "http://93.184.216.34", "stages": [{"phase": "load", "rate": 1, '
        '"duration_s": 1}], "mix": {"churn": 1}}'
    )
    done = subprocess.run(
        [sys.executable, "-m", "bench.load.generator", "--config", str(cfg), "--out", "x.arrow"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        # the checkout under test first: the venv's editable install may point at another one
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2
    assert "base_url" in done.stderr and "not loopback" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "x.arrow").exists()


# -- config ---------------------------------------------------------------------------------


def test_unknown_endpoints_and_empty_mixes_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown endpoints"):
        config(mix={"churn": 1, "upload": 1})
    with pytest.raises(ValidationError, match="weight above 0"):
        config(mix={"churn": 0})
    with pytest.raises(ValidationError, match="finite"):
        config(mix={"churn": -1, "json": 2})


def test_the_in_flight_cap_is_far_above_rate_times_timeout() -> None:
    assert config(timeout_s=10).in_flight_cap == 8000  # 4 x 200/s x 10 s
    assert config(timeout_s=0.1).in_flight_cap == 1000  # never below 1000
    assert config(max_in_flight=5).in_flight_cap == 5


def test_stages_from_a_spec_have_a_tenth_of_the_rate_as_warmup_by_default() -> None:
    cfg = LoadConfig.from_service_spec(
        ServiceSpec(), base_url="http://127.0.0.1:9", origin=12.5, allocator="glibc", repeat=0
    )
    assert [(s.phase, s.rate, s.duration_s, s.mix) for s in cfg.stages] == [
        ("warmup", 20, 30, None),
        ("load", 200, 600, None),
        ("idle", 1, 120, {"health": 1.0}),  # the default idle traffic: health probes
    ]
    assert (
        cfg.timeout_s == 10 and cfg.origin == 12.5 and cfg.mix == {"churn": 2, "json": 1, "xml": 1}
    )
    assert (cfg.payload.min_items, cfg.payload.max_items, cfg.payload.seed) == (4, 500, 7)
    assert cfg.payload.distribution == "log-uniform"
    assert cfg.planned_s == 750
    assert cfg.endpoint_names == ("churn", "health", "json", "xml")


def test_a_silent_idle_adds_no_stage() -> None:
    cfg = LoadConfig.from_service_spec(ServiceSpec(idle_rate=0), base_url="http://127.0.0.1:9")
    assert [s.phase for s in cfg.stages] == ["warmup", "load"]
    assert cfg.endpoint_names == ("churn", "json", "xml")
    assert cfg.warm_connections == 256  # 64 per worker


def test_a_spec_without_warmup_has_only_the_load_stage() -> None:
    spec = ServiceSpec(warmup_s=0, warmup_rate=50, rate=100, idle_rate=0)
    cfg = LoadConfig.from_service_spec(spec, base_url="http://localhost:9")
    assert [s.phase for s in cfg.stages] == ["load"]


# -- the service's endpoints and bodies -----------------------------------------------------


def test_endpoint_calls_match_the_service() -> None:
    from service import app as app_module
    from service import payloads

    routes = {
        (method, route.path)
        for route in app_module.create_app().routes
        for method in getattr(route, "methods", None) or ()
    }
    for name, call in ENDPOINTS.items():
        assert (call.method, call.path) in routes, name
        if call.content_type is not None:
            assert call.content_type == payloads.CONTENT_TYPES[name]


def test_bodies_come_from_the_service_payload_stream_deterministically() -> None:
    cfg = config(pool_size=8)
    pools = body_pools(cfg)
    assert set(pools) == {"json", "xml"}  # churn carries no body
    assert all(len(p) == 8 for p in pools.values())
    assert pools["json"][0].startswith(b"{") and pools["xml"][0].startswith(b"<?xml")
    assert body_pools(cfg) == pools
    assert len(set(pools["json"])) == 8  # different documents, not one repeated


def test_minimal_bodies_skip_the_payload_stream() -> None:
    pools = body_pools(config(payload={"kind": "minimal"}))
    assert pools == {"json": [b'{"items": []}'], "xml": [b"<order/>"]}


# -- record and summary ---------------------------------------------------------------------


def record_of(rows: list[tuple[int, float, float, float, int, str | None]]) -> Record:
    """A record at t0 = 100 from (stage, offset, sent, done, status, error) tuples."""
    record = Record(("churn", "json"), ("warmup", "load"), t0=100.0)
    for stage, offset, sent, done, status, error in rows:
        i = record.add(stage, 0, offset)
        record.sent[i] = sent
        record.finish(i, status, error, done)
    return record


def test_rows_carry_exact_intended_times_and_null_for_what_did_not_happen() -> None:
    record = Record(("churn",), ("load",), t0=1000.123)
    for i in range(3):
        record.add(0, 0, i / 3)
    record.sent[0] = 1000.124
    record.finish(0, 200, None, 1000.2)
    record.finish(1, 0, "overload", math.nan)
    rows = record.rows(origin=1000.123, allocator="glibc", repeat=2)
    assert rows["intended_s"] == [0.0, 1 / 3, 2 / 3]
    assert rows["sent_s"][1:] == [None, None] and rows["done_s"][1:] == [None, None]
    assert rows["status"] == [200, 0, -1]
    assert rows["error"] == [None, "overload", None]
    assert rows["allocator"] == ["glibc"] * 3 and rows["repeat"] == [2] * 3
    assert rows["phase"] == ["load"] * 3 and rows["endpoint"] == ["churn"] * 3


def test_close_pending_marks_only_unfinished_requests() -> None:
    record = record_of([(0, 0.0, 100.0, 100.1, 200, None)])
    record.add(1, 1, 0.5)
    assert record.close_pending("cancelled") == 1
    assert record.status[1] == 0 and record.errors[1] == "cancelled"


def test_summary_of_an_empty_run() -> None:
    record = Record(("churn",), ("load",), t0=5.0)
    summary = summarize(record, [Stage("load", 10, 0)], end=5.0, origin=5.0, cpu_s=0.0)
    assert (summary.requests, summary.sent, summary.ok, summary.errors) == (0, 0, 0, 0)
    assert summary.late_ms_p99 is None and summary.latency_ms_p99 is None
    assert summary.stages[0].achieved_rps is None and summary.cpu_pct == 0.0


def test_summary_counts_latency_from_the_intended_time_and_rates_per_stage() -> None:
    record = record_of(
        [
            (0, 0.0, 100.001, 100.011, 200, None),
            (0, 0.5, 100.502, 100.512, 200, None),
            (1, 1.0, 101.001, 101.101, 200, None),
            (1, 1.5, 101.501, 101.9, 503, "HTTP 503: Service Unavailable"),
            (1, 1.75, 101.75, math.nan, 0, "ClientConnectorError: refused"),
        ]
    )
    stages = [Stage("warmup", 2, 1), Stage("load", 4, 1)]
    summary = summarize(record, stages, end=102.2, origin=99.0, cpu_s=0.11)
    assert (summary.requests, summary.sent, summary.completed) == (5, 5, 4)
    assert (summary.ok, summary.errors) == (3, 2)
    assert summary.error_kinds == {"HTTP 503": 1, "ClientConnectorError": 1}
    warmup, load = summary.stages
    assert (warmup.requests, warmup.ok, warmup.achieved_rps) == (2, 2, 2.0)
    assert (load.requests, load.ok, load.errors, load.achieved_rps) == (3, 1, 2, 1.0)
    assert warmup.start_s == pytest.approx(1.0) and load.start_s == pytest.approx(2.0)
    assert summary.latency_ms_p50 == pytest.approx(12.0)  # OK ones: 11, 12 and 101 ms
    assert summary.latency_ms_p99 == pytest.approx(99.22)
    assert summary.late_ms_max == pytest.approx(2.0)
    assert summary.late_ms_p50 == pytest.approx(1.0)
    assert summary.t0_s == pytest.approx(1.0) and summary.cpu_pct == pytest.approx(5.0)


def test_a_stopped_run_rates_only_the_part_of_the_stage_that_ran() -> None:
    record = record_of([(0, i / 10, 100 + i / 10, 100.01 + i / 10, 200, None) for i in range(5)])
    stages = [Stage("load", 10, 10)]
    summary = summarize(record, stages, end=100.5, origin=100.0, cpu_s=0.0, stopped_by="SIGTERM")
    assert summary.stages[0].elapsed_s == pytest.approx(0.5)
    assert summary.stages[0].achieved_rps == pytest.approx(10.0)
    assert summary.stopped_by == "SIGTERM"


def test_the_payload_spec_and_the_load_config_share_names_and_defaults() -> None:
    # The generator process does not import bench.spec (YAML and the service's models), so
    # PayloadConfig repeats PayloadSpec's fields; this pins them together, as
    # tests/service/test_service_churn.py does for ChurnSpec and the service's ChurnConfig.
    config = PayloadConfig().model_dump()
    assert config.pop("kind") == "service"  # the study's own bodies; "minimal" is for tests
    assert PayloadSpec().model_dump() == config
