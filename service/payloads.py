"""Request bodies for /json and /xml: realistic order documents, deterministic by seed.

The load generator and the tests import this module so that both send the same bodies. An
order has a customer, an address, a few tags and `min_items`..`max_items` line items with
attributes, about 290 bytes of JSON (370 of XML) an item: 4 items make a JSON body of about
1.5 KB, 500 items about 145 KB (XML 185 KB). The number of items is drawn log-uniform between
the bounds by default (as many small documents as large ones per decade of size, so most are a
few KB and a few are hundreds of KB: the transient sizes of real API traffic), or uniform.

Public API:

    stream = PayloadStream(seed=7, min_items=4, max_items=500, distribution="log-uniform")
    body = stream.body("json")          # bytes; send with CONTENT_TYPES["json"]
    body = stream.body("xml")

Each kind has its own random stream, so the n-th JSON body is the same whatever the traffic
mix. `order_document(rng, ...)` builds one document as a dict; `json_body` and `xml_body`
encode a document. `service.documents` parses both encodings back to the same order.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator
from typing import Any, Literal
from xml.etree.ElementTree import Element, SubElement, tostring

__all__ = [
    "CONTENT_TYPES",
    "DISTRIBUTIONS",
    "Distribution",
    "item_count",
    "Kind",
    "PayloadStream",
    "json_body",
    "order_document",
    "xml_body",
]

Kind = Literal["json", "xml"]
Distribution = Literal["log-uniform", "uniform"]
DISTRIBUTIONS: tuple[str, ...] = ("log-uniform", "uniform")

#: The Content-Type header to send with each kind of body.
CONTENT_TYPES: dict[str, str] = {"json": "application/json", "xml": "application/xml"}

_FIRST = tuple(
    "Ada Bruno Chiara Dmitri Elif Farid Greta Hiro Ines Jonas Kemal Lena Mateo Nora Oskar "
    "Priya Quentin Rosa Sven Tomoko".split()
)
_LAST = tuple(
    "Moreau Rossi Novak Schmidt Yilmaz Haddad Berg Tanaka Silva Kowalski Dubois Costa "
    "Lindqvist Nakamura Okafor Petrov".split()
)
_CITIES = tuple(
    tuple(entry.split())
    for entry in (
        "Lyon FR 69003|Torino IT 10121|Brno CZ 60200|Leipzig DE 04109|Izmir TR 35210|"
        "Porto PT 4000-322|Malmo SE 21145|Osaka JP 530-0001|Gdansk PL 80-001"
    ).split("|")
)
_STREETS = tuple(
    "Rue des Lilas|Via Roma|Masarykova|Karl-Liebknecht-Str.|Kordon Boyu|Rua das Flores|"
    "Storgatan|Midosuji|Dluga".split("|")
)
_EDITIONS = ("", "Deluxe", "Classic", "Mini", "Pro")
_TAGS = ("loyalty", "b2b", "newsletter", "gift", "priority", "returning", "wholesale", "vip")
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "books": (
        ("Field Guide to Lichens", "Collected Letters", "Pocket Atlas", "Cookbook"),
        (("format", ("paperback", "hardcover", "ebook")), ("language", ("en", "fr", "de"))),
    ),
    "garden": (
        ("Pruning Shears", "Seed Tray", "Watering Can", "Compost Bin"),
        (("material", ("steel", "plastic", "zinc")), ("volume", ("2l", "5l", "10l"))),
    ),
    "apparel": (
        ("Wool Socks", "Rain Jacket", "Linen Shirt", "Cap"),
        (("size", ("S", "M", "L", "XL")), ("color", ("navy", "ochre", "grey", "green"))),
    ),
    "kitchen": (
        ("Cast Iron Pan", "Chef Knife", "Tea Kettle", "Cutting Board"),
        (("material", ("iron", "steel", "oak")), ("finish", ("matte", "polished"))),
    ),
    "toys": (
        ("Wooden Train", "Puzzle 500", "Kite", "Marbles"),
        (("age", ("3+", "6+", "10+")), ("pieces", ("12", "100", "500"))),
    ),
    "electronics": (
        ("USB Cable", "Desk Lamp", "Headphones", "Power Bank"),
        (("color", ("black", "white")), ("warranty", ("1y", "2y", "3y"))),
    ),
}
_PHRASES = (
    "Sturdy enough for daily use and easy to clean.",
    "Made in a small workshop from responsibly sourced materials.",
    "Ships in recycled packaging with a printed care guide.",
    "A customer favourite, restocked every season.",
    "Comes with a two-year guarantee and free repairs.",
    "Light, compact and ready to travel.",
    "Designed with feedback from professionals in the field.",
)
_NOTES = (
    "Leave the parcel with the neighbour if nobody answers.",
    "Gift wrap the books, please; no invoice in the box.",
    "Deliver after 17:00 on weekdays.",
    "",
)


def item_count(
    rng: random.Random, min_items: int, max_items: int, distribution: str = "log-uniform"
) -> int:
    """How many items the next document has: log-uniform or uniform over min..max."""
    if not 0 < min_items <= max_items:
        raise ValueError(f"need 0 < min_items <= max_items, got {min_items}, {max_items}")
    if distribution == "uniform":
        return rng.randint(min_items, max_items)
    if distribution != "log-uniform":
        raise ValueError(f"unknown distribution {distribution!r} (known: {DISTRIBUTIONS})")
    # floor of exp(uniform(ln min, ln(max + 1))): every count in range, log-uniform weights
    value = math.exp(rng.uniform(math.log(min_items), math.log(max_items + 1)))
    return max(min_items, min(max_items, int(value)))


def order_document(
    rng: random.Random,
    min_items: int = 4,
    max_items: int = 500,
    distribution: str = "log-uniform",
) -> dict[str, Any]:
    """One order with `min_items`..`max_items` line items, drawn from `rng`."""
    count = item_count(rng, min_items, max_items, distribution)
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    city, country, postcode = rng.choice(_CITIES)
    items = []
    for _ in range(count):
        category = rng.choice(tuple(_CATEGORIES))
        names, attribute_choices = _CATEGORIES[category]
        items.append(
            {
                "sku": f"{category[:2].upper()}-{rng.randrange(100000):05d}",
                "name": f"{rng.choice(names)} {rng.choice(_EDITIONS)}".strip(),
                "category": category,
                "quantity": rng.randint(1, 12),
                "unit_price": round(rng.uniform(0.5, 250.0), 2),
                "discount": rng.choice((0.0, 0.0, 0.05, 0.1, 0.15, 0.25)),
                "description": " ".join(rng.sample(_PHRASES, rng.randint(1, 3))),
                "attributes": {key: rng.choice(values) for key, values in attribute_choices},
            }
        )
    return {
        "order_id": f"ORD-{rng.randrange(10**8):08d}",
        "created": (
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
            f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z"
        ),
        "currency": rng.choice(("EUR", "EUR", "USD", "GBP", "SEK")),
        "customer": {
            "id": f"C-{rng.randrange(10**6):06d}",
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{last.lower()}@example.org",
            "address": {
                "street": f"{rng.randint(1, 180)} {rng.choice(_STREETS)}",
                "city": city,
                "postcode": postcode,
                "country": country,
            },
            "tags": rng.sample(_TAGS, rng.randint(0, 3)),
        },
        "items": items,
        "notes": rng.choice(_NOTES),
    }


def json_body(document: dict[str, Any]) -> bytes:
    """The document as compact UTF-8 JSON."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def _number(value: float | int) -> str:
    return str(value)  # repr of a float reads back to the same float


def xml_body(document: dict[str, Any]) -> bytes:
    """The document as UTF-8 XML (the layout `service.documents.parse_xml` reads)."""
    order = Element(
        "order",
        {
            "id": document["order_id"],
            "created": document["created"],
            "currency": document["currency"],
        },
    )
    customer = document["customer"]
    node = SubElement(order, "customer", {"id": customer["id"]})
    SubElement(node, "name").text = customer["name"]
    SubElement(node, "email").text = customer["email"]
    SubElement(node, "address", dict(customer["address"]))
    tags = SubElement(node, "tags")
    for tag in customer.get("tags", []):
        SubElement(tags, "tag").text = tag
    items = SubElement(order, "items")
    for item in document["items"]:
        element = SubElement(
            items,
            "item",
            {
                "sku": item["sku"],
                "category": item["category"],
                "quantity": _number(item["quantity"]),
                "unit_price": _number(item["unit_price"]),
                "discount": _number(item.get("discount", 0.0)),
            },
        )
        SubElement(element, "name").text = item["name"]
        if "description" in item:
            SubElement(element, "description").text = item["description"]
        attributes = SubElement(element, "attributes")
        for key, value in item.get("attributes", {}).items():
            SubElement(attributes, "attribute", {"name": key}).text = value
    if document.get("notes") is not None:
        SubElement(order, "notes").text = document["notes"]
    return tostring(order, encoding="utf-8", xml_declaration=True)


_ENCODERS = {"json": json_body, "xml": xml_body}


class PayloadStream:
    """Deterministic bodies for each kind ("json", "xml"): same seed, same sequence per kind.

    With `pool`, the first `pool` bodies of each kind are made once and then repeated, which
    keeps a load generator's per-request cost to a lookup.
    """

    def __init__(
        self,
        seed: int,
        min_items: int = 4,
        max_items: int = 500,
        distribution: str = "log-uniform",
        *,
        pool: int | None = None,
    ) -> None:
        if pool is not None and pool <= 0:
            raise ValueError("pool must be positive")
        item_count(random.Random(0), min_items, max_items, distribution)  # checks the bounds
        self.seed, self.min_items, self.max_items = seed, min_items, max_items
        self.distribution = distribution
        self._streams: dict[str, Iterator[bytes]] = {}
        self._pool = pool

    def _generate(self, kind: str) -> Iterator[bytes]:
        rng = random.Random(f"allocstudy-payload:{self.seed}:{kind}")
        encode = _ENCODERS[kind]
        while True:
            yield encode(order_document(rng, self.min_items, self.max_items, self.distribution))

    def body(self, kind: Kind | str) -> bytes:
        """The next body of this kind."""
        if kind not in _ENCODERS:
            raise ValueError(f"unknown payload kind {kind!r} (known: json, xml)")
        stream = self._streams.get(kind)
        if stream is None:
            stream = self._generate(kind)
            if self._pool is not None:
                stream = itertools.cycle(list(itertools.islice(stream, self._pool)))
            self._streams[kind] = stream
        return next(stream)
