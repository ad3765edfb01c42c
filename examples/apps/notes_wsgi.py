"""The notes-and-orders API as a plain WSGI callable, no framework: a WSGI app to study.

Serve it with `service.app: notes_wsgi:app` and `service.app_dir: apps`, or with any WSGI
server. The routes are those of notes_asgi.py: `POST /notes`, `GET /notes?tag=T&limit=N`,
`GET /notes/<id>`, `DELETE /notes/<id>`, `POST /orders`, `GET /orders/<id>`, `GET /report`.
A WSGI server calls it from several threads, so the stores are guarded by a lock. Memory is
bounded the same way, and each worker process keeps its own notes (ids name their worker).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

MAX_NOTES = 2000
MAX_ORDERS = 2000
CACHE_SIZE = 256
MAX_BODY = 1 << 20
TAX_RATE = 0.2
COUPONS = {"SPRING10": 0.10, "VIP25": 0.25}
_WORD = re.compile(r"[a-z']+")
_REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found"}
_REASONS |= {405: "Method Not Allowed", 413: "Content Too Large", 422: "Unprocessable Content"}

StartResponse = Callable[..., Any]


class Store:
    """Notes, orders and the priced-order cache, each forgetting its oldest beyond a bound."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.notes: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.counter = 0

    @staticmethod
    def _put(table: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > limit:
            table.popitem(last=False)

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{os.getpid()}-{self.counter:08d}"  # per worker, as in notes_asgi


store = Store()


class Problem(Exception):
    """A request the app refuses: its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _read_json(environ: dict[str, Any]) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Problem(400, "bad Content-Length") from None
    if length > MAX_BODY:
        raise Problem(413, "body too large")
    try:
        return json.loads(environ["wsgi.input"].read(length) or b"null")
    except ValueError:
        raise Problem(400, "the body is not JSON") from None


def create_note(environ: dict[str, Any]) -> tuple[int, Any]:
    data = _read_json(environ)
    if not isinstance(data, dict) or not isinstance(data.get("title"), str):
        raise Problem(422, "a note needs a title")
    body, tags = data.get("body", ""), data.get("tags", [])
    if not isinstance(body, str) or not isinstance(tags, list):
        raise Problem(422, "body must be text and tags a list")
    with store.lock:
        note = {
            "id": store.new_id("n"),
            "title": data["title"].strip()[:200],
            "body": body,
            "tags": sorted({str(tag).lower() for tag in tags})[:16],
            "words": len(_WORD.findall(body.lower())),
            "created": time.time(),
        }
        store._put(store.notes, note["id"], note, MAX_NOTES)
    return 201, note


def list_notes(environ: dict[str, Any]) -> tuple[int, Any]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    tag = query.get("tag", [None])[0]
    try:
        limit = max(1, min(100, int(query.get("limit", ["20"])[0])))
    except ValueError:
        raise Problem(400, "limit must be a number") from None
    with store.lock:
        newest = list(reversed(store.notes.values()))
    found = [n for n in newest if tag is None or tag in n["tags"]][:limit]
    return 200, {"count": len(found), "notes": found}


def price(order: dict[str, Any]) -> dict[str, Any]:
    """Lines, subtotal, discount, tax and total of an order (raises ValueError if malformed)."""
    lines = []
    for item in order["items"]:
        qty, unit = int(item["qty"]), float(item["price"])
        if qty < 1 or unit < 0:
            raise ValueError("quantities are positive and prices not negative")
        lines.append({"sku": str(item["sku"]), "qty": qty, "amount": round(qty * unit, 2)})
    subtotal = round(sum(line["amount"] for line in lines), 2)
    discount = round(subtotal * COUPONS.get(str(order.get("coupon", "")), 0.0), 2)
    tax = round((subtotal - discount) * TAX_RATE, 2)
    return {
        "customer": str(order["customer"]),
        "lines": lines,
        "subtotal": subtotal,
        "discount": discount,
        "tax": tax,
        "total": round(subtotal - discount + tax, 2),
    }


def create_order(environ: dict[str, Any]) -> tuple[int, Any]:
    order = _read_json(environ)
    try:
        key = hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()
        with store.lock:
            priced = store.cache.get(key)
        cached = priced is not None
        if priced is None:
            priced = price(order)
            with store.lock:
                store._put(store.cache, key, priced, CACHE_SIZE)
    except (ValueError, KeyError, TypeError) as exc:
        raise Problem(422, f"not an order: {exc}") from None
    with store.lock:
        stored = dict(priced, id=store.new_id("o"), cached=cached)
        store._put(store.orders, stored["id"], stored, MAX_ORDERS)
    return 201, stored


def _get(table: str, key: str) -> tuple[int, Any]:
    with store.lock:
        found = getattr(store, table).get(key)
    if found is None:
        raise Problem(404, f"no such {table[:-1]}")
    return 200, found


def _delete_note(key: str) -> tuple[int, Any]:
    with store.lock:
        found = store.notes.pop(key, None)
    if found is None:
        raise Problem(404, "no such note")
    return 200, {"deleted": key}


def report(environ: dict[str, Any]) -> tuple[int, Any]:
    with store.lock:
        notes = list(store.notes.values())
        order_count = len(store.orders)
    words: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for note in notes:
        words.update(_WORD.findall(note["body"].lower()))
        tags.update(note["tags"])
    return 200, {
        "notes": len(notes),
        "orders": order_count,
        "top_words": words.most_common(10),
        "top_tags": tags.most_common(10),
    }


def _route(method: str, path: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    parts = [part for part in path.split("/") if part]
    routes: dict[tuple[str, ...], dict[str, Callable[[dict[str, Any]], tuple[int, Any]]]] = {
        ("notes",): {"POST": create_note, "GET": list_notes},
        ("orders",): {"POST": create_order},
        ("report",): {"GET": report},
    }
    if len(parts) == 2 and parts[0] in ("notes", "orders"):
        table, key = parts
        handlers = {"GET": lambda environ: _get(table, key)}
        if table == "notes":
            handlers["DELETE"] = lambda environ: _delete_note(key)
    elif tuple(parts) in routes:
        handlers = routes[tuple(parts)]
    else:
        raise Problem(404, "no such route")
    if method not in handlers:
        raise Problem(405, f"{method} is not allowed here")
    return handlers[method]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI entry point."""
    try:
        handler = _route(environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/"))
        status, data = handler(environ)
    except Problem as problem:
        status, data = problem.status, {"error": str(problem)}
    body = json.dumps(data, separators=(",", ":")).encode()
    start_response(
        f"{status} {_REASONS.get(status, 'Error')}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
