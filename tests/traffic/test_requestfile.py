"""bench.traffic.requestfile: JSON-lines request files, checked with file:line, rendered seeded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.load.config import LoadConfig, request_variants
from bench.traffic.issues import RequestFileError
from bench.traffic.requestfile import load_requests, render_variants

GOOD = """\
# the traffic of a notes API
{"name": "list", "method": "GET", "path": "/notes?limit=${int:1:50}", "weight": 4}

{"method": "post", "path": "/notes", "json": {"title": "t${hex:4}", "n": "${int:1:3}"}}
{"method": "PUT", "path": "/notes/1", "body": "plain", "headers": {"X-Trace": "on"}}
{"method": "POST", "path": "/upload", "body_file": "doc.xml", "weight": 0.5}
{"method": "GET", "path": "/notes?limit=5"}
"""


@pytest.fixture(autouse=True)
def _inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors name a file inside the working folder by its relative path."""
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "traffic.jsonl") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RequestFileError) as caught:
        load_requests(write(tmp_path, text))
    return [str(issue) for issue in caught.value.issues]


@pytest.fixture
def good(tmp_path: Path) -> Path:
    (tmp_path / "doc.xml").write_text("<doc id='${uuid}'/>", encoding="utf-8")
    return write(tmp_path, GOOD)


def test_a_request_file_gives_named_weighted_requests(good: Path) -> None:
    mix = load_requests(good)
    by_name = {r.name: r for r in mix.requests}
    assert list(by_name) == ["list", "POST /notes", "PUT /notes/1", "POST /upload", "GET /notes"]
    assert mix.weights == {
        "list": 4.0,
        "POST /notes": 1.0,
        "PUT /notes/1": 1.0,
        "POST /upload": 0.5,
        "GET /notes": 1.0,
    }
    post = by_name["POST /notes"]
    assert post.method == "POST" and post.body_kind == "json"
    assert post.content_type == "application/json"
    put = by_name["PUT /notes/1"]
    assert (put.body, put.content_type, put.headers) == (
        "plain",
        "text/plain; charset=utf-8",
        {"X-Trace": "on"},
    )
    upload = by_name["POST /upload"]
    assert upload.body == "<doc id='${uuid}'/>" and upload.content_type in (
        "application/xml",
        "text/xml",
    )
    assert by_name["list"].body_kind == "none" and not by_name["list"].fixed
    assert by_name["GET /notes"].fixed
    assert "5 requests" in mix.summary


def test_default_names_are_made_unique(tmp_path: Path) -> None:
    text = '{"method": "GET", "path": "/a?x=1"}\n{"method": "GET", "path": "/a?x=2"}\n'
    names = [r.name for r in load_requests(write(tmp_path, text)).requests]
    assert names == ["GET /a", "GET /a #2"]


def test_every_problem_is_one_line_with_file_line_and_field(tmp_path: Path) -> None:
    text = "\n".join(
        [
            '{"method": "FETCH", "path": "/a"}',  # 1
            '{"path": "/a"}',  # 2
            '{"method": "GET", "path": "http://host/a"}',  # 3
            '{"method": "GET", "path": "/a b"}',  # 4
            '{"method": "GET", "path": "/a/${number:1:2}"}',  # 5
            '{"method": "GET", "path": "/a", "weight": 0}',  # 6
            '{"method": "GET", "path": "/a", "colour": "red"}',  # 7
            '{"method": "POST", "path": "/a", "body": "x", "json": {}}',  # 8
            '{"method": "POST", "path": "/a", "body": 5}',  # 9
            '{"method": "POST", "path": "/a", "body_file": "missing.txt"}',  # 10
            '{"method": "GET", "path": "/a", "headers": {"Host": "x"}}',  # 11
            '{"method": "GET", "path": "/a", "headers": {"Bad Name": "x"}}',  # 12
            '{"method": "GET", "path": "/a", "name": "health"}',  # 13
            '{"method": "GET", "path": "/a", "name": "dup"}',  # 14
            '{"method": "GET", "path": "/b", "name": "dup"}',  # 15
            '{"method": "GET", "path": "/a", "json": {"k": "${int:3:1}"}}',  # 16
            '["not", "an", "object"]',  # 17
            '{"method": "GET", "path": "/a", "weight": true}',  # 18
            '{"method": "GET", "path": "/__allocstudy__/stats"}',  # 19
            '{"method": "GET", "path": "/a", "headers": {"X-Id": "${int:9}"}}',  # 20
            '{"method": "GET", "path": "/a", "headers": {"Authorization": "${env:NO_SUCH_VAR}"}}',
            '{"method": "GET", "path": "/a", "headers": {"X-Note": "${var:note_id}"}}',  # 22
        ]
    )
    lines = problems(tmp_path, text)
    expected = [
        "traffic.jsonl:1: method: must be one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
        "traffic.jsonl:2: method: is required",
        "traffic.jsonl:3: path: must start with one / (no scheme, no host)",
        "traffic.jsonl:4: path: must not hold spaces",
        "traffic.jsonl:5: path: unknown field ${number:1:2}",
        "traffic.jsonl:6: weight: must be a number above 0",
        "traffic.jsonl:7: colour: unknown key",
        "traffic.jsonl:8: json: give one of body, json, body_file or form",
        "traffic.jsonl:9: body: must be text",
        "traffic.jsonl:10: body_file: cannot read 'missing.txt'",
        "traffic.jsonl:11: headers.Host: set by the HTTP client itself",
        "traffic.jsonl:12: headers.Bad Name: not a valid header name",
        "traffic.jsonl:13: name: 'health' is the harness's own probe",
        "traffic.jsonl:15: name: 'dup' is already the name on line 14",
        "traffic.jsonl:16: json: ${int:3:1}: LO (3) must not exceed HI (1)",
        "traffic.jsonl:17: a request must be a JSON object",
        "traffic.jsonl:18: weight: must be a number above 0",
        "traffic.jsonl:19: path: /__allocstudy__ is the harness's own",
        "traffic.jsonl:20: headers.X-Id: ${int:9}: write ${int:LO:HI}",
        "traffic.jsonl:21: headers.Authorization: ${env:NO_SUCH_VAR}: the environment variable "
        "NO_SUCH_VAR is not set",
        "traffic.jsonl:22: headers.X-Note: ${var:note_id} is a flow's value",
    ]
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), (line, start)
        assert "\n" not in line


def test_a_line_that_is_not_json_is_located(tmp_path: Path) -> None:
    lines = problems(tmp_path, '# ok\n{"method": "GET", "path": "/"}\n{"method": GET}\n')
    assert lines == ["traffic.jsonl:3: not valid JSON: Expecting value (column 12)"]


def test_an_empty_file_says_it_has_no_requests(tmp_path: Path) -> None:
    assert problems(tmp_path, "# nothing yet\n\n") == [
        "traffic.jsonl:1: no requests: write one JSON object a line"
    ]


def test_a_binary_body_file_is_sent_byte_for_byte_with_its_content_type(tmp_path: Path) -> None:
    from bench.traffic.requestfile import render_variants

    png = b"\x89PNG\r\n\x1a\n\x00\xff${not a field}"
    (tmp_path / "logo.png").write_bytes(png)
    (tmp_path / "t.jsonl").write_text(
        '{"name": "upload", "method": "PUT", "path": "/logo", "body_file": "logo.png"}\n'
    )
    (request,) = load_requests(tmp_path / "t.jsonl").requests
    assert request.body_kind == "binary" and request.content_type == "image/png"
    assert request.fixed
    assert render_variants(request, 8, seed=1) == [("/logo", png)]  # one variant, as it is


def test_the_digest_follows_the_request_file_and_its_body_files(good: Path) -> None:
    first = load_requests(good).sha256
    assert load_requests(good).sha256 == first
    (good.parent / "doc.xml").write_text("<doc/>", encoding="utf-8")
    second = load_requests(good).sha256
    assert second != first
    good.write_text(GOOD.replace('"weight": 4', '"weight": 5'), encoding="utf-8")
    assert load_requests(good).sha256 not in (first, second)


def test_variants_are_seeded_by_seed_and_name_and_fixed_requests_have_one(good: Path) -> None:
    requests = {r.name: r for r in load_requests(good).requests}
    listing = render_variants(requests["list"], 16, seed=7)
    assert listing == render_variants(requests["list"], 16, seed=7)
    assert listing != render_variants(requests["list"], 16, seed=8)
    assert all(p.startswith("/notes?limit=") and b is None for p, b in listing)
    assert len({p for p, _ in listing}) > 5
    posted = [json.loads(b or b"") for _, b in render_variants(requests["POST /notes"], 4, 7)]
    assert all(isinstance(d["n"], int) and d["title"].startswith("t") for d in posted)
    assert render_variants(requests["PUT /notes/1"], 16, seed=7) == [("/notes/1", b"plain")]


def test_a_load_config_carries_the_mix_and_renders_variants_before_t0(good: Path) -> None:
    mix = load_requests(good)
    config = LoadConfig.model_validate(
        {
            "base_url": "http://127.0.0.1:9",
            "stages": [
                {"phase": "load", "rate": 10, "duration_s": 1},
                {"phase": "idle", "rate": 1, "duration_s": 1, "mix": {"health": 1}},
            ],
            "mix": mix.weights,
            "requests": [r.model_dump(mode="json") for r in mix.requests],
            "health_path": "/__probe",
            "pool_size": 8,
        }
    )
    again = LoadConfig.model_validate_json(config.model_dump_json())  # as the process reads it
    assert again == config
    assert set(config.endpoint_names) == {*mix.weights, "health"}
    calls = config.calls()
    assert calls["health"].path == "/__probe" and calls["PUT /notes/1"].headers == {"X-Trace": "on"}
    variants = request_variants(config)
    assert len(variants["list"]) == 8 and len(variants["PUT /notes/1"]) == 1
    assert variants == request_variants(again)


def test_a_load_config_refuses_a_mix_naming_no_request(good: Path) -> None:
    mix = load_requests(good)
    with pytest.raises(ValueError, match="unknown endpoints \\['churn'\\]"):
        LoadConfig.model_validate(
            {
                "base_url": "http://127.0.0.1:9",
                "stages": [{"phase": "load", "rate": 10, "duration_s": 1}],
                "mix": {"churn": 1},
                "requests": [r.model_dump(mode="json") for r in mix.requests],
            }
        )


def test_a_feed_draws_rows_seeded_and_keeps_each_variant_on_one_row(tmp_path: Path) -> None:
    from bench.traffic.requestfile import load_requests, render_variants

    (tmp_path / "users.csv").write_text("id,name\n1,ada\n2,bob\n3,cy\n", encoding="utf-8")
    line = {
        "name": "profile",
        "method": "POST",
        "path": "/users/${feed:users.csv:id}",
        "json": {"id": "${feed:users.csv:id}", "name": "${feed:users.csv:name}"},
    }
    (tmp_path / "t.jsonl").write_text(json.dumps(line) + "\n", encoding="utf-8")
    mix = load_requests(tmp_path / "t.jsonl")
    (request,) = mix.requests
    variants = render_variants(request, 32, seed=5)
    pairs = {("1", "ada"), ("2", "bob"), ("3", "cy")}
    for path, body in variants:
        doc = json.loads(body or b"{}")
        assert (doc["id"], doc["name"]) in pairs  # one row per variant
        assert path == f"/users/{doc['id']}"
    assert {json.loads(b or b"{}")["id"] for _, b in variants} == {"1", "2", "3"}
    assert variants == render_variants(request, 32, seed=5)  # seeded
    # the feed is hashed into the spec like a body file: a changed row is a changed study
    before = mix.sha256
    (tmp_path / "users.csv").write_text("id,name\n1,ada\n2,bob\n3,cyd\n", encoding="utf-8")
    assert load_requests(tmp_path / "t.jsonl").sha256 != before


def test_a_feed_that_cannot_serve_is_refused_at_its_line(tmp_path: Path) -> None:
    from bench.traffic.issues import RequestFileError
    from bench.traffic.requestfile import load_requests

    (tmp_path / "users.jsonl").write_text('{"id": 1}\n{"id": 2}\n', encoding="utf-8")
    lines = [
        {"method": "GET", "path": "/a/${feed:users.jsonl:uid}"},
        {"method": "GET", "path": "/b/${feed:missing.csv:id}"},
    ]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(RequestFileError) as caught:
        load_requests(tmp_path / "t.jsonl")
    text = str(caught.value)
    assert "t.jsonl:1: path:" in text and "has no column 'uid' (it has id)" in text
    assert "t.jsonl:2: path:" in text and "missing.csv: cannot read it" in text


def test_a_form_is_sent_as_multipart_that_a_real_parser_reads(tmp_path: Path) -> None:
    from email.parser import BytesParser
    from email.policy import HTTP

    from bench.traffic.requestfile import render_variants

    png = b"\x89PNG\r\n\x1a\n\x00\xff"
    (tmp_path / "logo.png").write_bytes(png)
    line = {
        "name": "new note",
        "method": "POST",
        "path": "/notes",
        "form": {"title": "note ${int:1:9}", "attachment": {"file": "logo.png"}},
    }
    (tmp_path / "t.jsonl").write_text(json.dumps(line) + "\n")
    (request,) = load_requests(tmp_path / "t.jsonl").requests
    assert request.content_type and request.content_type.startswith("multipart/form-data")
    assert not request.fixed  # the title varies
    for _, body in render_variants(request, 4, seed=2):
        head = f"Content-Type: {request.content_type}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + (body or b""))
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        assert parts["title"].get_content().startswith("note ")
        assert parts["attachment"].get_filename() == "logo.png"
        assert parts["attachment"].get_content_type() == "image/png"
        assert parts["attachment"].get_payload(decode=True) == png


def test_a_form_that_cannot_be_built_is_refused_at_its_line(tmp_path: Path) -> None:
    lines = problems(
        tmp_path,
        '{"method": "POST", "path": "/a", "form": {"f": {"file": "missing.bin"}}}\n'
        '{"method": "POST", "path": "/b", "form": {"n": 3}}\n',
    )
    assert lines[0].startswith("traffic.jsonl:1: form.f: cannot read 'missing.bin'")
    assert lines[1] == 'traffic.jsonl:2: form.n: must be text or {"file": NAME}'
