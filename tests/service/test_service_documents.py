"""service.documents: real work on orders, and a 4xx for anything hostile or broken.

The parsers are fuzzed in-process with hypothesis: whatever the bytes, the only exception is a
DocumentError with a 4xx status, and whatever parses can be summarized and rendered.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.documents import (
    DocumentError,
    order_from_data,
    parse_json,
    parse_xml,
    render_json,
    render_xml,
    summarize,
)
from service.payloads import json_body, order_document, xml_body

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PASSWD_MARKER = b"root:"

XML_ATTACKS = {
    "xxe_file": b"""<?xml version="1.0"?>
<!DOCTYPE order [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<order id="x" created="c" currency="EUR"><notes>&xxe;</notes></order>""",
    "billion_laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>""",
    "quadratic_blowup": (
        b'<?xml version="1.0"?><!DOCTYPE order [<!ENTITY a "'
        + b"A" * 50_000
        + b'">]><order>'
        + b"&a;" * 20_000
        + b"</order>"
    ),
    "external_dtd": b"""<?xml version="1.0"?>
<!DOCTYPE order SYSTEM "http://127.0.0.1:9/evil.dtd"><order/>""",
    "external_dtd_file": b"""<?xml version="1.0"?>
<!DOCTYPE order SYSTEM "file:///etc/passwd"><order/>""",
    "parameter_entity": b"""<?xml version="1.0"?>
<!DOCTYPE order [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><order/>""",
    "internal_subset_only": b"""<?xml version="1.0"?><!DOCTYPE order []><order/>""",
}


def _good_document(seed: int = 1, items: int = 8) -> dict[str, Any]:
    return order_document(random.Random(seed), items, items)


def _assert_client_error(exc: DocumentError) -> None:
    assert 400 <= exc.status < 500
    assert exc.message and len(exc.message) < 300


# ---------------------------------------------------------------------------------------------
# The work


def test_the_summary_aggregates_ranks_and_reshapes() -> None:
    document = {
        "order_id": "ORD-1",
        "created": "2024-01-01T00:00:00Z",
        "currency": "EUR",
        "customer": {
            "id": "C-1",
            "name": "Ada",
            "email": "ada@example.org",
            "tags": ["b", "a", "b"],
            "address": {"street": "1 Road", "city": "Lyon", "postcode": "69003", "country": "FR"},
        },
        "items": [
            {"sku": "A", "name": "n", "category": "books", "quantity": 2, "unit_price": 10.0},
            {
                "sku": "B",
                "name": "n",
                "category": "toys",
                "quantity": 1,
                "unit_price": 50.0,
                "discount": 0.5,
                "attributes": {"age": "3+"},
            },
            {"sku": "C", "name": "n", "category": "books", "quantity": 1, "unit_price": 5.25},
        ],
    }
    summary = summarize(order_from_data(document))
    assert summary["totals"] == {
        "lines": 3,
        "quantity": 4,
        "gross": 75.25,
        "discount": 25.0,
        "net": 50.25,
    }
    assert [(c["category"], c["net"], c["lines"]) for c in summary["categories"]] == [
        ("books", 25.25, 2),
        ("toys", 25.0, 1),
    ]
    assert [line["sku"] for line in summary["lines"]] == ["B", "A", "C"]
    assert [line["rank"] for line in summary["lines"]] == [1, 2, 3]
    assert summary["customer"]["tags"] == ["a", "b"]
    assert summary["attributes"] == {"age": ["3+"]}


def test_responses_are_about_as_large_as_requests() -> None:
    document = _good_document(items=40)
    summary = summarize(order_from_data(document))
    for body, rendered in (
        (json_body(document), render_json(summary)),
        (xml_body(document), render_xml(summary)),
    ):
        assert 0.5 < len(rendered) / len(body) < 2.5
    json.loads(render_json(summary))


# ---------------------------------------------------------------------------------------------
# Hostile and broken input


@pytest.mark.parametrize("name", sorted(XML_ATTACKS))
def test_classic_xml_attacks_are_refused_before_any_entity_is_read(name: str) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_xml(XML_ATTACKS[name])
    assert caught.value.status == 400
    assert "DTD" in caught.value.message
    assert PASSWD_MARKER.decode() not in caught.value.message


def test_xinclude_is_not_processed() -> None:
    body = (
        b'<order xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/></order>'
    )
    with pytest.raises(DocumentError) as caught:
        parse_xml(body)
    assert caught.value.status == 422
    assert PASSWD_MARKER.decode() not in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 200_000,
        b'{"a":' * 100_000,
        b"<order>" + b"<x>" * 100_000 + b"</x>" * 100_000 + b"</order>",
    ],
)
def test_deep_nesting_is_a_client_error_not_a_crash(body: bytes) -> None:
    parse = parse_xml if body.startswith(b"<") else parse_json
    with pytest.raises(DocumentError) as caught:
        parse(body)
    _assert_client_error(caught.value)


@pytest.mark.parametrize(
    "body, status",
    [
        (b"", 400),
        (b"{", 400),
        (b"\xff\xfe\xfd", 400),
        (b"1" * 5000, 400),
        (b"NaN", 422),
        (b'{"items": Infinity}', 422),
        (b"[]", 422),
        (b'"\\ud800"', 422),
    ],
)
def test_broken_json_is_a_4xx(body: bytes, status: int) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_json(body)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "mutate, where",
    [
        (lambda d: d.pop("customer"), "customer"),
        (lambda d: d["items"][0].update(quantity=True), "items[0].quantity"),
        (lambda d: d["items"][0].update(quantity=0), "items[0].quantity"),
        (lambda d: d["items"][1].update(unit_price="12"), "items[1].unit_price"),
        (lambda d: d["items"][1].update(unit_price=1e300), "items[1].unit_price"),
        (lambda d: d["items"][2].update(discount=2), "items[2].discount"),
        (lambda d: d["items"][2].update(attributes=[]), "items[2].attributes"),
        (lambda d: d.update(items=[]), "items"),
        (lambda d: d.update(notes="x\x00y"), "notes"),
        (lambda d: d.update(order_id="x" * 5000), "order_id"),
        (lambda d: d["customer"].update(tags="vip"), "customer.tags"),
        (lambda d: d["customer"]["address"].pop("city"), "customer.address.city"),
    ],
)
def test_a_document_that_is_not_an_order_is_a_422_naming_the_field(mutate: Any, where: str) -> None:
    document = _good_document()
    mutate(document)
    with pytest.raises(DocumentError) as caught:
        parse_json(json_body(document))
    assert caught.value.status == 422
    assert caught.value.message.startswith(where)


@pytest.mark.parametrize(
    "body",
    [
        b"<order",
        b"<order/>",
        b"<other/>",
        b'<?xml version="1.0" encoding="bogus"?><order/>',
        b"<order>&undefined;</order>",
        b'<order id="1" created="c" currency="E"><customer id="c"><address/></customer>'
        b'<items><item sku="s" category="c" quantity="many" unit_price="1"/></items></order>',
        b'<order id="1" created="c" currency="E"><customer id="c"><address/></customer>'
        b'<items><item sku="s" category="c" quantity="1" unit_price="nan"/></items></order>',
    ],
)
def test_broken_xml_is_a_4xx(body: bytes) -> None:
    with pytest.raises(DocumentError) as caught:
        parse_xml(body)
    _assert_client_error(caught.value)


# ---------------------------------------------------------------------------------------------
# Fuzzing


def _parse_render(parse: Any, body: bytes) -> None:
    try:
        order = parse(body)
    except DocumentError as exc:
        _assert_client_error(exc)
        return
    summary = summarize(order)
    render_json(summary)
    render_xml(summary)


@FUZZ
@given(st.binary(max_size=2000))
@example(b"\xef\xbb\xbf{}")
@example(b"\x00\x00\x00{")
def test_any_bytes_are_parsed_or_refused_as_json(body: bytes) -> None:
    _parse_render(parse_json, body)


@FUZZ
@given(st.binary(max_size=2000))
@example(b"\xef\xbb\xbf<order/>")
@example(b"\xff\xfe<\x00o\x00/\x00>\x00")
def test_any_bytes_are_parsed_or_refused_as_xml(body: bytes) -> None:
    _parse_render(parse_xml, body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)


@FUZZ
@given(json_values)
def test_any_json_value_is_an_order_or_a_422(value: Any) -> None:
    try:
        order = order_from_data(value)
    except DocumentError as exc:
        assert exc.status == 422
        return
    render_xml(summarize(order))


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats()
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.text(), max_size=2)
)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            paths += _paths(value, (*prefix, index))
    return paths


@FUZZ
@given(st.integers(0, 10_000), st.data())
def test_valid_orders_with_one_field_broken_are_handled(seed: int, data: st.DataObject) -> None:
    document = order_document(random.Random(seed), 1, 4)
    path = data.draw(st.sampled_from(_paths(document)))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(_SCALARS)
    _parse_render(parse_json, json_body(document))
    try:
        xml = xml_body(document)
    except (TypeError, AttributeError, KeyError, ValueError):
        return  # the XML encoder needs strings where the broken document has other things
    _parse_render(parse_xml, xml)


_XML_TOKENS = st.sampled_from(
    [
        "<order>",
        "</order>",
        "<items>",
        "</items>",
        "<item ",
        'sku="s" ',
        'quantity="3" ',
        'unit_price="1.5" ',
        'discount="0.1" ',
        'category="c" ',
        "/>",
        ">",
        "</item>",
        "<customer id='c'>",
        "</customer>",
        "<address city='x'/>",
        "<name>n</name>",
        "&amp;",
        "&lt;",
        "&#0;",
        "&#x41;",
        "<![CDATA[x]]>",
        "<!-- c -->",
        "<?pi x?>",
        "<!DOCTYPE order>",
        '<!ENTITY e "x">',
        "&e;",
        "\u00e9",
        "\x00",
        "'",
        '"',
        " ",
        "=",
    ]
)


@FUZZ
@given(st.lists(_XML_TOKENS, max_size=40))
def test_xml_made_of_order_like_tokens_is_parsed_or_refused(tokens: list[str]) -> None:
    _parse_render(parse_xml, "".join(tokens).encode("utf-8", "surrogatepass"))
