"""bench.traffic.flows: a request file's flows checked at file:line, save paths, filling steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.traffic.flows import SavePathError, extract, fill, missing_reason, save_path
from bench.traffic.issues import RequestFileError
from bench.traffic.requestfile import load_requests, render_variants

FLOW = """\
{"name": "list", "method": "GET", "path": "/notes", "weight": 3}
{"flow": "note", "name": "create", "method": "POST", "path": "/notes", "json": {"t": "x"}, \
"save": {"note_id": "$.id", "first": "$.items[0].id"}, "weight": 2}
{"flow": "note", "name": "read", "method": "GET", "path": "/notes/${var:note_id}", "pause_s": 0.5}
{"flow": "note", "method": "PUT", "path": "/notes/${var:note_id}", \
"json": {"id": "${var:first}", "label": "copy of ${var:note_id}"}}
"""


@pytest.fixture(autouse=True)
def _inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "traffic.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RequestFileError) as caught:
        load_requests(write(tmp_path, text))
    return [str(issue) for issue in caught.value.issues]


def test_a_flow_s_steps_are_named_numbered_and_drawn_by_their_first(tmp_path: Path) -> None:
    mix = load_requests(write(tmp_path, FLOW))
    names = [r.name for r in mix.requests]
    assert names == ["list", "note 1/3: create", "note 2/3: read", "note 3/3: PUT /notes/{note_id}"]
    steps = mix.requests[1:]
    assert [(r.flow, r.step) for r in steps] == [("note", 1), ("note", 2), ("note", 3)]
    assert steps[0].save == {"note_id": "$.id", "first": "$.items[0].id"}
    assert [r.pause_s for r in steps] == [0.0, 0.5, 0.0]
    assert mix.weights == {"list": 3.0, **{r.name: 0.0 for r in steps}} | {steps[0].name: 2.0}
    assert "(1 flow of several steps)" in mix.summary and "note 40%" in mix.summary
    recorded = mix.record()["requests"]
    assert recorded[2] == {
        "name": "note 2/3: read",
        "method": "GET",
        "path": "/notes/${var:note_id}",
        "weight": 2.0,
        "flow": "note",
        "step": 2,
    }


def test_a_rendered_step_keeps_a_marker_that_fill_replaces(tmp_path: Path) -> None:
    steps = {r.step: r for r in load_requests(write(tmp_path, FLOW)).requests if r.flow}
    ((path, body),) = render_variants(steps[2], 4, seed=1)
    assert fill(path, body, steps[2].body_kind, {"note_id": "n 1/2"}) == ("/notes/n%201%2F2", None)
    ((path, body),) = render_variants(steps[3], 4, seed=1)
    path, body = fill(path, body, steps[3].body_kind, {"note_id": "n7", "first": 42})
    assert path == "/notes/n7"
    assert json.loads(body or b"") == {"id": 42, "label": "copy of n7"}  # 42 stays a number


def test_every_flow_problem_is_one_line_with_file_line_and_field(tmp_path: Path) -> None:
    text = "\n".join(
        [
            '{"flow": "a", "method": "POST", "path": "/n", "save": {"id": "id"}}',  # 1
            '{"flow": "a", "method": "GET", "path": "/n/${var:nope}"}',  # 2
            '{"flow": "a", "method": "GET", "path": "/n/${var:later}", "weight": 2}',  # 3
            '{"flow": "a", "method": "GET", "path": "/m", "save": {"later": "$.x"}}',  # 4
            '{"method": "GET", "path": "/x/${var:id}", "save": {"id": "$.id"}}',  # 5
            '{"flow": "a", "method": "GET", "path": "/again"}',  # 6
            '{"flow": "b", "method": "GET", "path": "/b", "pause_s": 1}',  # 7
            '{"flow": "b", "method": "GET", "path": "/b2", "pause_s": -1}',  # 8
            '{"flow": "c", "method": "POST", "path": "/c", "save": {"v": "$.items[x]"}}',  # 9
            '{"flow": "c", "method": "GET", "path": "/c", "save": {"1v": "$.a"}}',  # 10
            '{"flow": "c", "method": "GET", "path": "/c/${var:1bad}"}',  # 11
            '{"flow": "c", "method": "GET", "path": "/c2", "save": "$.id"}',  # 12
            '{"flow": "", "method": "GET", "path": "/d"}',  # 13
        ]
    )
    expected = [
        "traffic.jsonl:1: save.id: 'id': a path starts with $",
        "traffic.jsonl:2: path: ${var:nope}: unknown, no step of flow 'a' saves it (it saves",
        "traffic.jsonl:3: weight: a flow's weight goes on its first step (line 1)",
        "traffic.jsonl:3: path: ${var:later} is saved by step 4 (line 4), not by a step before",
        "traffic.jsonl:5: save: only a flow's step saves values",
        "traffic.jsonl:5: path: ${var:id} is a flow's value: give the request a flow",
        "traffic.jsonl:6: flow: 'a' began on line 1: keep its steps on adjacent lines",
        "traffic.jsonl:7: pause_s: the first step starts at the flow's slot: no pause",
        "traffic.jsonl:8: pause_s: must be seconds from 0 to 600, not -1",
        "traffic.jsonl:9: save.v: '$.items[x]': cannot read it from '[x]'",
        "traffic.jsonl:10: save.1v: a name of letters, digits and _",
        "traffic.jsonl:11: path: ${var:1bad}: write ${var:NAME}",
        "traffic.jsonl:12: save: must be an object of names to paths",
        "traffic.jsonl:13: flow: must be a non-empty name",
    ]
    lines = sorted(problems(tmp_path, text), key=lambda s: int(s.split(":")[1]))
    assert len(lines) == len(expected), lines
    for line, start in zip(
        lines, sorted(expected, key=lambda s: int(s.split(":")[1])), strict=True
    ):
        assert line.startswith(start), (line, start)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("$.id", ("id",)),
        ("$.items[0].id", ("items", 0, "id")),
        ("$.items[-1]", ("items", -1)),
        ('$["a key"].b-c', ("a key", "b-c")),
    ],
)
def test_the_save_path_subset(text: str, parts: tuple[str | int, ...]) -> None:
    assert save_path(text) == parts


@pytest.mark.parametrize("text", ["id", "$", "$..id", "$.items[*]", "$.a[?(@.x)]", "$.a.", "$ .a"])
def test_a_path_outside_the_subset_is_refused_with_what_is_allowed(text: str) -> None:
    with pytest.raises(SavePathError, match=r"\$"):
        save_path(text)


def test_extract_reads_one_value_or_says_why_not() -> None:
    answer = {"id": "n1", "items": [{"id": 7}, {"id": 8}], "meta": {"owner": None}}
    assert extract(answer, save_path("$.id")) == "n1"
    assert extract(answer, save_path("$.items[1].id")) == 8
    assert extract(answer, save_path("$.items[-1].id")) == 8
    for path, why in [
        ("$.nope", "the answer has no $.nope"),
        ("$.items[2].id", "the answer has no $.items[2]"),
        ("$.id.more", "the answer has no $.id.more"),
        ("$.items", "$.items in the answer is list, not one value"),
        ("$.meta.owner", "$.meta.owner in the answer is null, not one value"),
    ]:
        with pytest.raises(KeyError) as caught:
            extract(answer, save_path(path))
        assert caught.value.args[0] == why
    assert missing_reason("note_id", "step 1 failed: HTTP 500") == (
        "flow step not sent: ${var:note_id} missing (step 1 failed: HTTP 500)"
    )
    assert missing_reason("x", None) == "flow step not sent: ${var:x} missing (never saved)"


def test_a_var_in_a_form_s_text_field_is_filled_in_the_multipart_body(tmp_path: Path) -> None:
    text = (
        '{"flow": "f", "method": "POST", "path": "/a", "save": {"id": "$.id"}}\n'
        '{"flow": "f", "method": "POST", "path": "/b", "form": {"about": "note ${var:id}"}}\n'
    )
    step = load_requests(write(tmp_path, text)).requests[1]
    ((path, body),) = render_variants(step, 4, seed=1)
    _, body = fill(path, body, step.body_kind, {"id": "n42"})
    assert b"note n42" in (body or b"") and b"\x00" not in (body or b"")
