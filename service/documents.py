"""The JSON and XML work of the service: parse an order, check it, summarize it, render it.

These are the transient allocations of a real service: a parse tree of a few KB to tens of KB,
dicts and strings built for the summary, a response of similar size, all freed when the request
ends. The work is real: totals per category, lines ranked by value, attributes indexed,
customer reshaped.

Anything wrong with a body is a `DocumentError` (a 4xx), never a crash:
- malformed JSON or XML, undecodable text, nesting too deep for the parser: 400;
- any XML DTD (so no entity expansion and no external entity, whatever the payload): 400;
- a well-formed document that is not an order (missing field, wrong type, NaN, absurd
  sizes): 422.
XML is parsed by defusedxml with DTDs forbidden; entities and external references are refused
as well, should a DTD ever get through.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError, SubElement, tostring

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from defusedxml.ElementTree import fromstring as _safe_fromstring

from service.bodies import RequestRejected

__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "DocumentError",
    "Item",
    "Order",
    "order_from_data",
    "parse_json",
    "parse_xml",
    "render_json",
    "render_xml",
    "summarize",
]

#: Most line items in one order.
MAX_ITEMS = 5000
#: Longest text field, characters.
MAX_TEXT = 2000
MAX_TAGS = 64
MAX_ATTRIBUTES = 64
MAX_QUANTITY = 100_000
MAX_PRICE = 1_000_000.0

# Characters XML 1.0 cannot carry (and lone surrogates, which UTF-8 cannot): refused in every
# text field, so a JSON order and an XML order accept the same strings and render safely.
_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class DocumentError(RequestRejected):
    """A body that is not a usable order: 400 when unreadable or refused, 422 when not an order."""


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


@dataclass(frozen=True, slots=True)
class Item:
    sku: str
    name: str
    category: str
    quantity: int
    unit_price: float
    discount: float
    description: str
    attributes: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    created: str
    currency: str
    customer_id: str
    customer_name: str
    customer_email: str
    street: str
    city: str
    postcode: str
    country: str
    tags: tuple[str, ...]
    items: tuple[Item, ...]
    notes: str


# ---------------------------------------------------------------------------------------------
# Checking: plain data (from JSON, or from XML turned into the same shape) into an Order


def _invalid(path: str, what: str) -> DocumentError:
    return DocumentError(422, f"{path} {what}")


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(path, "must be an object")
    return value


def _text(data: Mapping[str, Any], key: str, path: str, *, default: str | None = None) -> str:
    value = data.get(key, default)
    where = f"{path}.{key}" if path else key
    if not isinstance(value, str):
        raise _invalid(where, "is required" if value is None else "must be a string")
    if len(value) > MAX_TEXT:
        raise _invalid(where, f"is longer than {MAX_TEXT} characters")
    if _BAD_CHARS.search(value):
        raise _invalid(where, "contains characters XML cannot carry")
    return value


def _integer(data: Mapping[str, Any], key: str, path: str, low: int, high: int) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(f"{path}.{key}", f"must be an integer from {low} to {high}")
    return value


def _number(
    data: Mapping[str, Any], key: str, path: str, low: float, high: float, default: float | None
) -> float:
    value = data.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise _invalid(f"{path}.{key}", f"must be a number from {low:g} to {high:g}")
    return float(value)


def _item(data: Any, path: str) -> Item:
    item = _mapping(data, path)
    raw_attributes = _mapping(item.get("attributes", {}), f"{path}.attributes")
    if len(raw_attributes) > MAX_ATTRIBUTES:
        raise _invalid(f"{path}.attributes", f"has more than {MAX_ATTRIBUTES} entries")
    attributes = tuple(
        (
            _text({"name": key}, "name", f"{path}.attributes"),
            _text(raw_attributes, key, f"{path}.attributes"),
        )
        for key in raw_attributes
    )
    return Item(
        sku=_text(item, "sku", path),
        name=_text(item, "name", path),
        category=_text(item, "category", path),
        quantity=_integer(item, "quantity", path, 1, MAX_QUANTITY),
        unit_price=_number(item, "unit_price", path, 0.0, MAX_PRICE, None),
        discount=_number(item, "discount", path, 0.0, 1.0, 0.0),
        description=_text(item, "description", path, default=""),
        attributes=attributes,
    )


def order_from_data(data: Any) -> Order:
    """Check plain data (dicts, lists, str, numbers) and make it an Order, or DocumentError 422."""
    order = _mapping(data, "the document")
    customer = _mapping(order.get("customer"), "customer")
    address = _mapping(customer.get("address"), "customer.address")
    tags = customer.get("tags", [])
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise _invalid("customer.tags", f"must be a list of at most {MAX_TAGS} strings")
    items = order.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise _invalid("items", f"must be a list of 1 to {MAX_ITEMS} line items")
    return Order(
        order_id=_text(order, "order_id", ""),
        created=_text(order, "created", ""),
        currency=_text(order, "currency", ""),
        customer_id=_text(customer, "id", "customer"),
        customer_name=_text(customer, "name", "customer"),
        customer_email=_text(customer, "email", "customer"),
        street=_text(address, "street", "customer.address"),
        city=_text(address, "city", "customer.address"),
        postcode=_text(address, "postcode", "customer.address"),
        country=_text(address, "country", "customer.address"),
        tags=tuple(_text({"tag": t}, "tag", "customer.tags") for t in tags),
        items=tuple(_item(item, f"items[{i}]") for i, item in enumerate(items)),
        notes=_text(order, "notes", "", default=""),
    )


# ---------------------------------------------------------------------------------------------
# Parsing


def _refuse_constant(name: str) -> Any:
    raise DocumentError(422, f"{name} is not a number this service accepts")


def parse_json(body: bytes) -> Order:
    """An order from a JSON body (UTF-8, -16 or -32), or DocumentError."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise DocumentError(400, "malformed JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many int digits
        raise DocumentError(400, f"malformed JSON: {_short(exc)}") from None
    return order_from_data(data)


def _child(parent: Element, tag: str, path: str) -> Element:
    node = parent.find(tag)
    if node is None:
        raise _invalid(f"{path}.{tag}" if path else tag, "is required")
    return node


def _xml_number(text: str | None, path: str, kind: type[int] | type[float]) -> Any:
    if text is None:
        return None  # reported as missing by the checks
    try:
        return kind(text.strip())
    except ValueError:
        raise _invalid(path, f"is not a valid {kind.__name__}") from None


def _xml_to_data(root: Element) -> dict[str, Any]:
    """The XML layout of `service.payloads.xml_body` as the JSON layout (numbers converted)."""
    if root.tag != "order":
        raise _invalid("the document", f"must have <order> as root, not <{str(root.tag)[:40]}>")
    customer = _child(root, "customer", "")
    address = _child(customer, "address", "customer")
    tags_node = customer.find("tags")
    items = []
    nodes = _child(root, "items", "").findall("item")
    if len(nodes) > MAX_ITEMS:  # refuse before building thousands of dicts
        raise _invalid("items", f"must be a list of 1 to {MAX_ITEMS} line items")
    for i, node in enumerate(nodes):
        path = f"items[{i}]"
        attributes_node = node.find("attributes")
        attributes: dict[str, Any] = {}
        if attributes_node is not None:
            for attribute in attributes_node.findall("attribute"):
                attributes[attribute.get("name", "")] = attribute.text or ""
        name = node.find("name")
        description = node.find("description")
        items.append(
            {
                "sku": node.get("sku"),
                "name": None if name is None else name.text or "",
                "description": "" if description is None else description.text or "",
                "category": node.get("category"),
                "quantity": _xml_number(node.get("quantity"), f"{path}.quantity", int),
                "unit_price": _xml_number(node.get("unit_price"), f"{path}.unit_price", float),
                "discount": _xml_number(node.get("discount", "0"), f"{path}.discount", float),
                "attributes": attributes,
            }
        )
    name = customer.find("name")
    email = customer.find("email")
    notes = root.find("notes")
    return {
        "order_id": root.get("id"),
        "created": root.get("created"),
        "currency": root.get("currency"),
        "customer": {
            "id": customer.get("id"),
            "name": None if name is None else name.text or "",
            "email": None if email is None else email.text or "",
            "address": dict(address.attrib),
            "tags": [] if tags_node is None else [t.text or "" for t in tags_node.findall("tag")],
        },
        "items": items,
        "notes": "" if notes is None else notes.text or "",
    }


def parse_xml(body: bytes) -> Order:
    """An order from an XML body, parsed safely (no DTD, no entities), or DocumentError."""
    try:
        root = _safe_fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden:
        raise DocumentError(400, "XML with a DTD is not accepted") from None
    except EntitiesForbidden:
        raise DocumentError(400, "XML entity declarations are not accepted") from None
    except ExternalReferenceForbidden:
        raise DocumentError(400, "XML external references are not accepted") from None
    except DefusedXmlException as exc:
        raise DocumentError(400, f"XML refused: {_short(exc)}") from None
    except ParseError as exc:
        raise DocumentError(400, f"malformed XML: {_short(exc)}") from None
    except (ValueError, LookupError, RecursionError) as exc:  # odd encodings, deep trees
        raise DocumentError(400, f"malformed XML: {_short(exc)}") from None
    return order_from_data(_xml_to_data(root))


# ---------------------------------------------------------------------------------------------
# The work: aggregate, rank, reshape


def _cents(value: float) -> int:
    return round(value * 100)


def _headline(text: str, width: int = 60) -> str:
    """The first sentence of a description, cut at a word boundary to fit `width`."""
    sentence = text.split(". ", 1)[0].strip()
    if len(sentence) <= width:
        return sentence
    return sentence[:width].rsplit(" ", 1)[0].rstrip(",;:") + "..."


def summarize(order: Order) -> dict[str, Any]:
    """Totals per category, lines ranked by net value, an attribute index, the customer."""
    lines = []
    categories: dict[str, dict[str, Any]] = {}
    attribute_values: dict[str, set[str]] = {}
    for item in order.items:
        gross = _cents(item.quantity * item.unit_price)
        net = round(gross * (1.0 - item.discount))
        lines.append(
            {
                "sku": item.sku,
                "name": item.name,
                "category": item.category,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
                "gross": gross,
                "net": net,
                "headline": _headline(item.description),
                "attributes": ";".join(f"{k}={v}" for k, v in sorted(item.attributes)),
            }
        )
        total = categories.setdefault(
            item.category, {"category": item.category, "lines": 0, "quantity": 0, "net": 0}
        )
        total["lines"] += 1
        total["quantity"] += item.quantity
        total["net"] += net
        for key, value in item.attributes:
            attribute_values.setdefault(key, set()).add(value)
    lines.sort(key=lambda line: (-line["net"], line["sku"]))
    for rank, line in enumerate(lines, 1):
        line["rank"] = rank
        line["gross"] /= 100
        line["net"] /= 100
    gross_total = sum(_cents(i.quantity * i.unit_price) for i in order.items)
    net_total = sum(c["net"] for c in categories.values())
    ranked = sorted(categories.values(), key=lambda c: (-c["net"], c["category"]))
    for category in ranked:
        category["share"] = round(category["net"] / net_total, 4) if net_total else 0.0
        category["net"] /= 100
    return {
        "order_id": order.order_id,
        "created": order.created,
        "currency": order.currency,
        "customer": {
            "id": order.customer_id,
            "display": f"{order.customer_name} <{order.customer_email}>",
            "location": f"{order.postcode} {order.city}, {order.country}",
            "tags": sorted(set(order.tags)),
        },
        "totals": {
            "lines": len(lines),
            "quantity": sum(i.quantity for i in order.items),
            "gross": gross_total / 100,
            "discount": (gross_total - net_total) / 100,
            "net": net_total / 100,
        },
        "categories": ranked,
        "lines": lines,
        "attributes": {k: sorted(v) for k, v in sorted(attribute_values.items())},
        "notes_length": len(order.notes),
    }


def render_json(summary: Mapping[str, Any]) -> bytes:
    """The summary as compact JSON (ASCII, so any string is safe to send)."""
    return json.dumps(summary, separators=(",", ":")).encode()


def _attrs(data: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, str]:
    return {key: str(data[key]) for key in keys}


def render_xml(summary: Mapping[str, Any]) -> bytes:
    """The summary as UTF-8 XML."""
    root = Element("summary", _attrs(summary, ("order_id", "created", "currency")))
    customer = summary["customer"]
    node = SubElement(root, "customer", _attrs(customer, ("id", "display", "location")))
    for tag in customer["tags"]:
        SubElement(node, "tag").text = tag
    SubElement(root, "totals", _attrs(summary["totals"], tuple(summary["totals"])))
    categories = SubElement(root, "categories")
    for category in summary["categories"]:
        SubElement(categories, "category", _attrs(category, tuple(category)))
    lines = SubElement(root, "lines")
    for line in summary["lines"]:
        element = SubElement(
            lines,
            "line",
            _attrs(line, ("rank", "sku", "category", "quantity", "unit_price", "gross", "net")),
        )
        SubElement(element, "name").text = line["name"]
        if line["headline"]:
            SubElement(element, "headline").text = line["headline"]
        if line["attributes"]:
            SubElement(element, "attributes").text = line["attributes"]
    index = SubElement(root, "attributes")
    for key, values in summary["attributes"].items():
        SubElement(index, "attribute", {"name": key}).text = ",".join(values)
    return tostring(root, encoding="utf-8", xml_declaration=True)
