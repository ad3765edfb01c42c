"""service.payloads: deterministic, realistic bodies that both parsers read the same way."""

from __future__ import annotations

import json
import random

import pytest

from service.documents import order_from_data, parse_json, parse_xml
from service.payloads import CONTENT_TYPES, PayloadStream, json_body, order_document, xml_body


def test_the_same_seed_gives_the_same_bodies() -> None:
    a, b = PayloadStream(7, 5, 60), PayloadStream(7, 5, 60)
    assert [a.body("json") for _ in range(5)] == [b.body("json") for _ in range(5)]
    assert [a.body("xml") for _ in range(5)] == [b.body("xml") for _ in range(5)]
    assert PayloadStream(8).body("json") != PayloadStream(7).body("json")


def test_each_kind_has_its_own_stream_whatever_the_mix() -> None:
    mixed = PayloadStream(7)
    mixed.body("xml")
    mixed.body("xml")
    assert mixed.body("json") == PayloadStream(7).body("json")


def test_item_counts_stay_in_bounds_and_sizes_are_realistic() -> None:
    rng = random.Random(1)
    sizes = []
    for _ in range(200):
        document = order_document(rng, 5, 60)
        assert 5 <= len(document["items"]) <= 60
        sizes.append(len(json_body(document)))
    assert 1_000 < min(sizes) and max(sizes) < 40_000


def test_json_and_xml_bodies_parse_to_the_same_order() -> None:
    rng = random.Random(2)
    for _ in range(50):
        document = order_document(rng, 1, 30)
        expected = order_from_data(document)
        assert parse_json(json_body(document)) == expected
        assert parse_xml(xml_body(document)) == expected


def test_a_pool_repeats_its_bodies_in_order() -> None:
    stream = PayloadStream(3, 1, 3, pool=2)
    first = [stream.body("json") for _ in range(2)]
    assert [stream.body("json") for _ in range(4)] == first * 2
    fresh = PayloadStream(3, 1, 3)
    assert first == [fresh.body("json"), fresh.body("json")]


def test_bodies_are_valid_for_their_content_type() -> None:
    stream = PayloadStream(9)
    assert set(CONTENT_TYPES) == {"json", "xml"}
    json.loads(stream.body("json"))
    assert stream.body("xml").startswith(b"<?xml")


def test_unknown_kinds_and_bad_bounds_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown payload kind"):
        PayloadStream(1).body("yaml")
    with pytest.raises(ValueError, match="min_items"):
        PayloadStream(1, 10, 5)
    with pytest.raises(ValueError, match="pool"):
        PayloadStream(1, pool=0)
