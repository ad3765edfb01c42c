"""A small notes-and-orders API on Starlette: an ASGI app to study with allocstudy.

Serve it with `service.app: notes_asgi:app` and `service.app_dir: apps` (beside the spec), or
on its own with `uvicorn notes_asgi:app`. Routes (JSON in, JSON out):
- `POST /notes` {"title", "body", "tags"?}: stores a note, answers it with its id (201).
- `GET /notes/{id}`: one note; `DELETE /notes/{id}`: forgets it; `GET /notes?tag=T&limit=N`:
  the newest notes with that tag.
- `POST /orders` {"customer", "items": [{"sku", "qty", "price"}], "coupon"?}: prices the
  order (lines, tax, discount) and keeps it; the same order again is answered from a cache.
- `GET /orders/{id}`: a priced order; `GET /report`: word and tag counts over the notes.

Its memory is bounded, as a well-behaved service's is: at most MAX_NOTES notes and MAX_ORDERS
orders (the oldest go first) and a priced-order cache of CACHE_SIZE entries. What it allocates
per request (parsing, validating, serialising, tokenising) is freed when the answer is sent.

Each worker process keeps its own notes, as an app without a database does: an id names the
worker that made it (its pid in it), so a read that reaches another worker is a 404, never
another worker's note under the same number.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import Counter, OrderedDict
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MAX_NOTES = 2000
MAX_ORDERS = 2000
CACHE_SIZE = 256
TAX_RATE = 0.2
COUPONS = {"SPRING10": 0.10, "VIP25": 0.25}
_WORD = re.compile(r"[a-z']+")


class Bounded(OrderedDict[str, Any]):
    """A dict that forgets its oldest entries beyond `limit` (an LRU when touched on read)."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


notes: Bounded = Bounded(MAX_NOTES)
orders: Bounded = Bounded(MAX_ORDERS)
priced_cache: Bounded = Bounded(CACHE_SIZE)
_next_id = 0


def _new_id(prefix: str) -> str:
    global _next_id
    _next_id += 1
    return f"{prefix}{os.getpid()}-{_next_id:08d}"


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


async def create_note(request: Request) -> JSONResponse:
    data = await _json_body(request)
    if not isinstance(data, dict) or not isinstance(data.get("title"), str):
        return _problem(422, "a note needs a title")
    body = data.get("body", "")
    tags = data.get("tags", [])
    if not isinstance(body, str) or not isinstance(tags, list):
        return _problem(422, "body must be text and tags a list")
    note = {
        "id": _new_id("n"),
        "title": data["title"].strip()[:200],
        "body": body,
        "tags": sorted({str(tag).lower() for tag in tags})[:16],
        "words": len(_WORD.findall(body.lower())),
        "created": time.time(),
    }
    notes.put(note["id"], note)
    return JSONResponse(note, status_code=201)


async def get_note(request: Request) -> JSONResponse:
    note = notes.get(request.path_params["note_id"])
    return JSONResponse(note) if note is not None else _problem(404, "no such note")


async def delete_note(request: Request) -> JSONResponse:
    note = notes.pop(request.path_params["note_id"], None)
    return JSONResponse({"deleted": note["id"]}) if note else _problem(404, "no such note")


async def list_notes(request: Request) -> JSONResponse:
    tag = request.query_params.get("tag")
    try:
        limit = max(1, min(100, int(request.query_params.get("limit", "20"))))
    except ValueError:
        return _problem(400, "limit must be a number")
    found = [n for n in reversed(notes.values()) if tag is None or tag in n["tags"]][:limit]
    return JSONResponse({"count": len(found), "notes": found})


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


async def create_order(request: Request) -> JSONResponse:
    raw = await request.body()
    try:
        order = json.loads(raw)
        key = hashlib.sha256(json.dumps(order, sort_keys=True).encode()).hexdigest()
        priced = priced_cache.get(key)
        cached = priced is not None
        if priced is None:
            priced = price(order)
            priced_cache.put(key, priced)
    except (ValueError, KeyError, TypeError) as exc:
        return _problem(422, f"not an order: {exc}")
    stored = dict(priced, id=_new_id("o"), cached=cached)
    orders.put(stored["id"], stored)
    return JSONResponse(stored, status_code=201)


async def get_order(request: Request) -> JSONResponse:
    order = orders.get(request.path_params["order_id"])
    return JSONResponse(order) if order is not None else _problem(404, "no such order")


async def report(request: Request) -> JSONResponse:
    words: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    for note in notes.values():
        words.update(_WORD.findall(note["body"].lower()))
        tags.update(note["tags"])
    return JSONResponse(
        {
            "notes": len(notes),
            "orders": len(orders),
            "top_words": words.most_common(10),
            "top_tags": tags.most_common(10),
        }
    )


app = Starlette(
    routes=[
        Route("/notes", create_note, methods=["POST"]),
        Route("/notes", list_notes, methods=["GET"]),
        Route("/notes/{note_id}", get_note, methods=["GET"]),
        Route("/notes/{note_id}", delete_note, methods=["DELETE"]),
        Route("/orders", create_order, methods=["POST"]),
        Route("/orders/{order_id}", get_order, methods=["GET"]),
        Route("/report", report, methods=["GET"]),
    ]
)
