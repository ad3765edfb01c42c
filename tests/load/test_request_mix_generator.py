"""The load generator sending a request file's mix to a real loopback server."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from loadgen_support import free_port, run_loadgen, send_to_log_server

from bench.load.config import LoadConfig
from bench.spec import parse_spec
from bench.traffic.requestfile import load_requests
from service.config import HOSTED_HEALTH_PATH

SERVER = Path(__file__).with_name("requestlog_server.py")
REQUESTS = [
    {"name": "list", "method": "GET", "path": "/notes?limit=${int:1:50}", "weight": 2},
    {
        "name": "create",
        "method": "POST",
        "path": "/notes",
        "json": {"title": "t-${hex:6}", "n": "${int:1:9}"},
        "headers": {"X-Trace": "on"},
    },
    {
        "name": "upload",
        "method": "PUT",
        "path": "/notes/${int:1:3}",
        "body": "text ${alnum:5}",
        "headers": {"Content-Type": "text/markdown"},
    },
]
TRAFFIC = "# a small hosted-app mix with random fields\n" + "".join(
    json.dumps(r) + "\n" for r in REQUESTS
)


def test_a_request_file_mix_is_sent_rendered_and_recorded_by_name(tmp_path: Path) -> None:
    (tmp_path / "traffic.jsonl").write_text(TRAFFIC, encoding="utf-8")
    mix = load_requests(tmp_path / "traffic.jsonl")
    log = tmp_path / "server.jsonl"
    summary, rows, server_pid = send_to_log_server(
        SERVER,
        tmp_path,
        mix,
        log,
        stages=[
            {"phase": "load", "rate": 100, "duration_s": 2},
            {"phase": "idle", "rate": 10, "duration_s": 0.5, "mix": {"health": 1}},
        ],
        warm_connections=4,
        pool_size=16,
    )

    assert summary.errors == 0 and summary.ok == len(rows) == 205
    names = Counter((row["phase"], row["endpoint"]) for row in rows)
    assert set(names) == {
        ("load", "list"),
        ("load", "create"),
        ("load", "upload"),
        ("idle", "health"),
    }
    assert names[("idle", "health")] == 5
    assert names[("load", "list")] > names[("load", "create")]
    assert all(row["worker"] == server_pid and row["live_bytes"] is None for row in rows)

    seen = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    probes = [s for s in seen if s["path"] == HOSTED_HEALTH_PATH]
    assert len(probes) == 4 + 5  # the warm-up connections, then the idle stage
    assert all("${" not in s["path"] + s["body"] for s in seen)
    lists = [s for s in seen if s["path"].startswith("/notes?limit=")]
    assert all(s["method"] == "GET" and 1 <= int(s["path"].split("=")[1]) <= 50 for s in lists)
    assert len({s["path"] for s in lists}) > 5  # variants, not one request repeated
    creates = [s for s in seen if s["method"] == "POST"]
    assert all(s["content_type"] == "application/json" and s["trace"] == "on" for s in creates)
    documents = [json.loads(s["body"]) for s in creates]
    assert all(d["title"].startswith("t-") and 1 <= d["n"] <= 9 for d in documents)
    uploads = [s for s in seen if s["method"] == "PUT"]
    assert all(s["content_type"] == "text/markdown" for s in uploads)
    assert all(s["path"] in ("/notes/1", "/notes/2", "/notes/3") for s in uploads)
    assert all(s["body"].startswith("text ") and len(s["body"]) == 10 for s in uploads)
    assert len(lists) + len(creates) + len(uploads) == 200


def test_a_request_file_drives_the_synthetic_service_too(tmp_path: Path) -> None:
    """`requests` without `app`: a custom mix against /churn, /json and /xml, all answered."""
    from service import launcher, payloads

    stream = payloads.PayloadStream(3, 4, 20, "uniform")
    (tmp_path / "order.json").write_bytes(bytes(stream.body("json")))
    (tmp_path / "order.xml").write_bytes(bytes(stream.body("xml")))
    lines = [
        {"name": "churn", "method": "POST", "path": "/churn?n=${int:1:9}", "weight": 3},
        {"method": "POST", "path": "/json", "body_file": "order.json"},
        {
            "method": "POST",
            "path": "/xml",
            "body_file": "order.xml",
            "headers": {"Content-Type": "application/xml"},
        },
    ]
    (tmp_path / "traffic.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    spec = parse_spec(
        "name: t\ntitle: T\nallocators: [glibc]\nservice:\n  workers: 1\n  rate: 60\n"
        "  warmup_s: 0\n  load_s: 1\n  idle_s: 0\n  requests: traffic.jsonl\n"
        "  churn: {live_buffers: 200, max_bytes: 16384, alloc_per_call: 4,\n"
        "          short_lifetime_s: 0.2}\n",
        base_dir=tmp_path,
    )
    port = free_port()
    service = launcher.start_service(
        python=sys.executable,
        workers=1,
        port=port,
        env={},
        service_config=spec.service.model_dump(mode="json"),
    )
    try:
        config = LoadConfig.from_service_spec(
            spec.service, base_url=f"http://127.0.0.1:{port}", origin=time.monotonic()
        )
        summary, rows = run_loadgen(config, tmp_path / "r.arrow")
    finally:
        service.stop()
    assert len(rows) == 60
    assert all(r["status"] == 200 for r in rows), summary.error_kinds
    assert {r["endpoint"] for r in rows} == {"churn", "POST /json", "POST /xml"}
    assert all(r["live_bytes"] is not None for r in rows)  # the synthetic service says it


def test_an_env_field_sends_the_secret_and_records_only_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-token-93c1"
    monkeypatch.setenv("ALLOCSTUDY_TEST_TOKEN", secret)  # the generator inherits it
    line = {"name": "private", "method": "GET", "path": "/private/${env:ALLOCSTUDY_TEST_TOKEN}"}
    (tmp_path / "traffic.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    mix = load_requests(tmp_path / "traffic.jsonl")
    assert secret not in json.dumps(mix.record())  # what the manifest keeps: the name
    log = tmp_path / "server.jsonl"
    summary, rows, _ = send_to_log_server(
        SERVER,
        tmp_path,
        mix,
        log,
        stages=[{"phase": "load", "rate": 20, "duration_s": 0.5}],
        warm_connections=1,
    )
    assert summary.errors == 0 and len(rows) == 10
    seen = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    assert [s["path"] for s in seen if s["path"].startswith("/private/")] == [
        f"/private/{secret}"
    ] * 10
    # a variable that is not set stops the file at its line, naming it
    monkeypatch.delenv("ALLOCSTUDY_TEST_TOKEN")
    with pytest.raises(Exception, match="ALLOCSTUDY_TEST_TOKEN is not set"):
        load_requests(tmp_path / "traffic.jsonl")
