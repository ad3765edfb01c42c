"""bench.traffic.har: a browser's HAR becomes a request mix; what is kept and dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.traffic.har import convert_har
from bench.traffic.issues import RequestFileError
from bench.traffic.requestfile import load_requests, render_variants

ROOT = Path(__file__).resolve().parents[2]


def entry(method: str, url: str, headers: dict[str, str] | None = None, **extra: Any) -> dict:
    request: dict[str, Any] = {
        "method": method,
        "url": url,
        "headers": [{"name": k, "value": v} for k, v in (headers or {}).items()],
        "cookies": [{"name": "sid", "value": "1"}],
    }
    request.update(extra)
    return {
        "request": request,
        "response": {"status": 200, "content": {"text": "answer"}},
        "timings": {"wait": 3},
    }


def har(*entries: dict) -> str:
    return json.dumps({"log": {"version": "1.2", "entries": list(entries)}}, indent=2)


def test_the_example_har_keeps_the_apps_requests_and_says_what_it_dropped() -> None:
    mix = load_requests(ROOT / "examples" / "browser.har")
    assert mix.weights == {
        "GET /notes": 3.0,
        "GET /report": 1.0,
        "POST /notes": 1.0,
        "POST /orders": 1.0,
        "POST /notes #2": 1.0,
        "GET /notes #2": 2.0,
    }
    assert next(r for r in mix.requests if r.name == "GET /notes #2").path == (
        "/notes?tag=work&limit=20"
    )
    summary = mix.summary
    assert "12 HAR entries -> 6 requests to localhost:8000 (3 repeats merged" in summary
    assert "1 WebSocket, 1 data: URL, 1 other host" in summary
    assert "dropped responses, timings, cookies" in summary and "\n" not in summary
    for request in mix.requests:
        names = {h.lower() for h in request.headers}
        assert not names & {"host", "connection", "cookie", "content-length", "accept-encoding"}
        assert not any(h.startswith(":") for h in names)
        assert "user-agent" in names
    post = next(r for r in mix.requests if r.name == "POST /notes")
    assert json.loads(post.body or "") == {
        "title": "groceries",
        "body": "milk, eggs, bread",
        "tags": ["home"],
    }
    assert post.content_type == "application/json"


def test_path_and_query_are_kept_scheme_and_host_dropped() -> None:
    text = har(entry("GET", "https://app.example:8443/a/b?x=1&y=%20#frag"))
    ((line, obj),) = convert_har(text, "t.har")[0]
    assert obj == {"method": "GET", "path": "/a/b?x=1&y=%20", "weight": 1}
    assert line == 5  # the entry's first line: after {, "log", "version", "entries"


def test_identical_requests_merge_and_differing_bodies_do_not() -> None:
    body = {"mimeType": "application/json", "text": '{"a": 1}'}
    other = {"mimeType": "application/json", "text": '{"a": 2}'}
    text = har(
        entry("POST", "http://h/x", postData=body),
        entry("POST", "http://h/x", postData=body),
        entry("POST", "http://h/x", postData=other),
    )
    requests, summary = convert_har(text, "t.har")
    assert [(o["body"], o["weight"]) for _, o in requests] == [('{"a": 1}', 2), ('{"a": 2}', 1)]
    assert requests[0][1]["headers"] == {"Content-Type": "application/json"}
    assert "(1 repeats merged into weights)" in summary


def test_form_params_are_form_encoded_when_there_is_no_text() -> None:
    post = {
        "mimeType": "application/x-www-form-urlencoded",
        "params": [{"name": "q", "value": "a b"}, {"name": "n", "value": "2"}],
    }
    ((_, obj),) = convert_har(har(entry("POST", "http://h/f", postData=post)), "t.har")[0]
    assert obj["body"] == "q=a+b&n=2"


def test_a_dollar_brace_in_a_recorded_body_is_sent_literally(tmp_path: Path) -> None:
    post = {"mimeType": "text/plain", "text": "price ${int:1:2}"}
    path = tmp_path / "t.har"
    path.write_text(har(entry("POST", "http://h/p?v=${x}", postData=post)), encoding="utf-8")
    (request,) = load_requests(path).requests
    assert render_variants(request, 4, seed=1) == [("/p?v=${x}", b"price ${int:1:2}")]


def test_other_hosts_websockets_and_non_http_urls_are_dropped() -> None:
    text = har(
        entry("GET", "http://app/1"),
        entry("GET", "http://app/2"),
        entry("GET", "https://cdn.example/lib.js"),
        entry("GET", "wss://app/live"),
        entry("GET", "http://app/ws", {"Upgrade": "websocket"}),
        entry("GET", "blob:http://app/1234"),
        entry("GET", "data:text/plain,hi"),
    )
    requests, summary = convert_har(text, "t.har")
    assert [o["path"] for _, o in requests] == ["/1", "/2"]
    assert "2 WebSocket, 1 blob: URL, 1 data: URL, 1 other host" in summary


def test_headers_keep_the_apps_and_drop_the_clients_and_the_sessions() -> None:
    headers = {
        ":authority": "app",
        "Host": "app",
        "Connection": "keep-alive",
        "Content-Length": "3",
        "Cookie": "sid=1",
        "Accept-Encoding": "br",
        "TE": "trailers",
        "Authorization": "Bearer t",
        "X-Requested-With": "fetch",
        "accept": "a",
        "Accept": "b",
    }
    ((_, obj),) = convert_har(har(entry("GET", "http://app/", headers)), "t.har")[0]
    assert obj["headers"] == {
        "Authorization": "Bearer t",
        "X-Requested-With": "fetch",
        "accept": "a, b",
    }


def test_a_file_that_is_not_a_har_is_located(tmp_path: Path) -> None:
    path = tmp_path / "t.har"
    path.write_text('{"log": {\n  "entries": [\n    oops\n  ]}}', encoding="utf-8")
    with pytest.raises(RequestFileError) as caught:
        load_requests(path)
    assert str(caught.value).endswith("t.har:3: not valid JSON: Expecting value (a .har is JSON)")
    path.write_text('{"log": {}}', encoding="utf-8")
    with pytest.raises(RequestFileError, match=r"t.har:1: log.entries: a HAR needs a list"):
        load_requests(path)


def test_an_entry_without_a_usable_request_is_located_at_its_line() -> None:
    bad = entry("GET", "http://app/")
    bad["request"]["url"] = 5
    text = har(entry("GET", "http://app/"), {"response": {}}, bad)
    with pytest.raises(RequestFileError) as caught:
        convert_har(text, "t.har")
    lines = [str(i) for i in caught.value.issues]
    assert lines[0].startswith("t.har:") and lines[0].endswith("log.entries[1].request: is missing")
    assert lines[1].endswith("log.entries[2].request: needs a url and a method")
    first_lines = [int(line.split(":")[1]) for line in lines]
    assert text.splitlines()[first_lines[0] - 1].strip() == "{"
    assert first_lines[0] < first_lines[1]


def timed(method: str, url: str, started: str, took_ms: float, **extra: Any) -> dict:
    return {**entry(method, url, **extra), "startedDateTime": started, "time": took_ms}


def test_keep_order_makes_the_session_one_flow_in_its_order_with_its_pauses() -> None:
    post = {"mimeType": "application/json", "text": '{"t": 1}'}
    text = har(  # listed out of order: the start times decide
        timed("GET", "http://app/notes?x=1", "2026-01-01T10:00:01.000Z", 50),
        timed("GET", "http://app/notes?x=1", "2026-01-01T10:00:00.000Z", 200),
        timed("POST", "http://app/notes", "2026-01-01T10:00:01.020Z", 10, postData=post),
        timed("GET", "https://cdn.example/a.js", "2026-01-01T10:00:01.500Z", 5),
        timed("GET", "http://app/report", "2026-01-01T10:00:02.030Z", 10),
    )
    requests, summary = convert_har(text, "t.har", keep_order=True)
    steps = [obj for _, obj in requests]
    assert [(s["name"], s.get("pause_s"), s.get("weight")) for s in steps] == [
        ("GET /notes", None, 1),  # the first starts at the flow's slot
        ("GET /notes #2", 0.8, None),  # 1.0 s start - (0 + 0.2 s)
        ("POST /notes", 0.0, None),  # began before the previous answer: no pause
        ("GET /report", 1.0, None),
    ]
    assert {s["flow"] for s in steps} == {"session"} and steps[2]["body"] == '{"t": 1}'
    assert "one flow of 4 steps to app (recorded order, pauses as recorded)" in summary
    assert "dropped responses, cookies" in summary and "timings" not in summary  # kept as pauses


def test_keep_order_without_start_times_keeps_the_file_order_and_no_pauses() -> None:
    text = har(entry("GET", "http://app/b"), entry("GET", "http://app/a"))
    requests, summary = convert_har(text, "t.har", keep_order=True)
    assert [(o["path"], o.get("pause_s")) for _, o in requests] == [("/b", None), ("/a", None)]
    assert "start times missing: no pauses" in summary


def test_the_har_command_writes_a_request_file_that_reads_back(tmp_path: Path) -> None:
    from bench.cli import main

    out = tmp_path / "session.jsonl"
    source = ROOT / "examples" / "browser.har"
    assert main(["har", str(source), "--keep-order", "--out", str(out)]) == 0
    mix = load_requests(out)
    assert [r.step for r in mix.requests] == list(range(1, 10))
    assert mix.requests[0].name == "session 1/9: GET /notes"
    assert mix.weights[mix.requests[0].name] == 1.0
    assert [r.pause_s for r in mix.requests][2] == pytest.approx(4.057)
    assert out.read_text().startswith("# ")  # the account, as comments
    assert main(["har", str(source), "--out", str(out)]) == 2  # exists: not overwritten
    assert load_requests(out).requests[0].flow == "session"
    assert main(["har", str(source), "--out", str(out), "--force"]) == 0
    merged = load_requests(out)
    assert merged.weights == load_requests(source).weights
