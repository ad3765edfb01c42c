"""The load generator running a request file's flows against a real loopback server."""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from unittest import mock

from loadgen_support import send_to_log_server

from bench.traffic.requestfile import load_requests

SERVER = Path(__file__).with_name("flow_server.py")
TRAFFIC = [
    {
        "name": "list",
        "method": "GET",
        "path": "/other",
        "headers": {"Authorization": "Bearer ${env:ALLOCSTUDY_TEST_TOKEN}"},
        "weight": 2,
    },
    {
        "flow": "note",
        "name": "create",
        "method": "POST",
        "path": "/notes",
        "json": {"title": "t-${hex:6}"},
        "save": {"note_id": "$.id", "again": "$.items[0].id"},
        "weight": 2,
    },
    {
        "flow": "note",
        "name": "read",
        "method": "GET",
        "path": "/notes/${var:note_id}",
        "headers": {"X-Note": "note=${var:note_id}"},
    },
    {
        "flow": "note",
        "name": "delete",
        "method": "DELETE",
        "path": "/notes/${var:again}",
        "pause_s": 0.05,
    },
    {"flow": "broken", "method": "POST", "path": "/broken", "save": {"id": "$.id"}},
    {"flow": "broken", "name": "read", "method": "GET", "path": "/notes/${var:id}"},
    {"flow": "anon", "method": "POST", "path": "/anonymous", "save": {"id": "$.id"}},
    {"flow": "anon", "name": "read", "method": "GET", "path": "/notes/${var:id}"},
]


def run_flows(tmp_path: Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    with mock.patch.dict(os.environ, {"ALLOCSTUDY_TEST_TOKEN": "s3cret"}):  # a secret it names
        return _run_flows(tmp_path)


def _run_flows(tmp_path: Path) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
    (tmp_path / "traffic.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in TRAFFIC), encoding="utf-8"
    )
    mix = load_requests(tmp_path / "traffic.jsonl")
    log = tmp_path / "server.jsonl"
    summary, rows, _ = send_to_log_server(
        SERVER,
        tmp_path,
        mix,
        log,
        stages=[{"phase": "load", "rate": 60, "duration_s": 2}],
        pool_size=8,
    )
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    return summary, rows, seen


def test_flows_run_their_steps_in_order_with_saved_values_and_rows_of_their_own(
    tmp_path: Path,
) -> None:
    summary, rows, seen = run_flows(tmp_path)
    count = Counter(row["endpoint"] for row in rows)
    # each flow's first step is drawn by the schedule; each later step has a row of its own
    creates = count["note 1/3: create"]
    assert creates > 10
    assert count["note 2/3: read"] == count["note 3/3: delete"] == creates
    assert count["broken 2/2: read"] == count["broken 1/2: POST /broken"] > 0
    assert count["anon 2/2: read"] == count["anon 1/2: POST /anonymous"] > 0
    assert len(rows) == summary.requests

    # the note flow: every read and delete found the note its create made, none guessed
    by_endpoint: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_endpoint[row["endpoint"]].append(row)
    for name in ("note 1/3: create", "note 2/3: read", "note 3/3: delete"):
        assert {row["status"] for row in by_endpoint[name]} == {201 if "create" in name else 200}
    note_calls = [s for s in seen if s["path"].startswith("/notes/")]
    assert len(note_calls) == 2 * creates and all(s["status"] == 200 for s in note_calls)
    # a header takes a saved value too, and a secret from the environment
    reads = [s for s in note_calls if s["method"] == "GET"]
    assert all(s["note_header"] == "note=" + s["path"].rsplit("/", 1)[1] for s in reads)
    others = [s for s in seen if s["path"] == "/other"]
    assert others and {s["authorization"] for s in others} == {"Bearer s3cret"}

    # a step follows its previous answer (and its pause): its due time is after that answer;
    # all of one flow's steps go over the same connection (its lane)
    creates_done = sorted(row["done_s"] for row in by_endpoint["note 1/3: create"])
    reads_due = sorted(row["intended_s"] for row in by_endpoint["note 2/3: read"])
    reads_done = sorted(row["done_s"] for row in by_endpoint["note 2/3: read"])
    deletes_due = sorted(row["intended_s"] for row in by_endpoint["note 3/3: delete"])
    assert all(due >= done for due, done in zip(reads_due, creates_done, strict=True))
    assert all(due >= done + 0.05 for due, done in zip(deletes_due, reads_done, strict=True))
    port_of = {(s["method"], s["path"]): s["client_port"] for s in seen if "/notes/" in s["path"]}
    assert all(
        port_of[("GET", path)] == port_of[("DELETE", path)]
        for method, path in port_of
        if method == "GET"
    )

    # a step whose value is missing is not sent: failed, with the reason
    for flow, why in [
        ("broken", "step 1 failed: HTTP 500: Internal Server Error"),
        ("anon", "step 1: the answer has no $.id"),
    ]:
        for row in by_endpoint[f"{flow} 2/2: read"]:
            assert row["status"] == 0 and row["sent_s"] is None
            assert row["error"] == f"flow step not sent: ${{var:id}} missing ({why})"
    assert not [s for s in seen if s["path"].startswith("/notes/") and s["status"] == 404]
    assert (
        summary.error_kinds["flow step not sent"]
        == count["broken 2/2: read"] + count["anon 2/2: read"]
    )
