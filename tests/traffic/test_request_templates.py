"""bench.traffic.templates: the `${...}` random fields of request paths and bodies."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from bench.traffic.templates import (
    TemplateError,
    check_json,
    compile_template,
    escape,
    has_fields,
    render_json,
)


def render(text: str, seed: int = 1) -> str:
    return compile_template(text).render(random.Random(seed))


def test_text_without_fields_is_sent_as_written() -> None:
    assert render('{"a": {"b": [1, 2]}} $5 {x}') == '{"a": {"b": [1, 2]}} $5 {x}'
    assert compile_template("/plain/path").fixed
    assert not has_fields("/plain/path")


def test_every_field_kind_renders_within_its_bounds() -> None:
    for seed in range(50):
        value = int(render("${int:-3:4}", seed))
        assert -3 <= value <= 4
        assert len(render("${hex:12}", seed)) == 12
        int(render("${hex:12}", seed), 16)
        assert render("${alnum:9}", seed).isalnum() and len(render("${alnum:9}", seed)) == 9
        assert render("${choice:red|green|blue}", seed) in {"red", "green", "blue"}
        assert uuid.UUID(render("${uuid}", seed)).version == 4


def test_the_same_seed_renders_the_same_text_and_others_differ() -> None:
    text = "/notes/${int:1:1000000}?tag=${hex:8}&id=${uuid}"
    assert render(text, 7) == render(text, 7)
    assert len({render(text, seed) for seed in range(20)}) == 20


def test_a_doubled_dollar_writes_a_literal_field_opening() -> None:
    assert render("cost $${int:1:2}") == "cost ${int:1:2}"
    assert render(escape("raw ${not a field}")) == "raw ${not a field}"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("${number:1:9}", "unknown field ${number:1:9}"),
        ("${int:9:1}", "LO (9) must not exceed HI (1)"),
        ("${int:1}", "write ${int:LO:HI}"),
        ("${int:a:2}", "'a' is not a whole number"),
        ("${hex:0}", "from 1 to 1024"),
        ("${alnum:x}", "from 1 to 1024"),
        ("${choice:a||b}", "no empty option"),
        ("${uuid:4}", "unknown field"),
        ("/x/${int:1:2", "unclosed field"),
    ],
)
def test_a_bad_field_is_an_error_that_quotes_it(text: str, words: str) -> None:
    with pytest.raises(TemplateError, match=None) as caught:
        compile_template(text)
    assert words in str(caught.value)


def test_a_lone_int_field_in_json_becomes_a_number_and_others_stay_text() -> None:
    value = {"n": "${int:5:5}", "s": "n=${int:5:5}", "list": ["${hex:2}"], "${choice:k}": 1}
    check_json(value)
    out = render_json(value, random.Random(1))
    assert out["n"] == 5 and out["s"] == "n=5" and out["k"] == 1
    assert isinstance(out["list"][0], str) and len(out["list"][0]) == 2
    json.dumps(out)


def test_a_bad_field_anywhere_in_a_json_value_is_found() -> None:
    with pytest.raises(TemplateError, match="unknown field"):
        check_json({"a": [1, {"b": "${nope}"}]})
