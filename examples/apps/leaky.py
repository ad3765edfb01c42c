"""An app with a real leak, for the "leak or retention?" question: a plain ASGI callable.

Every request appends a record of LEAK_BYTES (32 KiB) to a module-level list that nothing ever
empties, the way a cache without a bound or a list of "recent requests" leaks in real services.
The program's own live bytes therefore grow with every request, and so does the memory the
allocator holds: allocstudy must call this growth the program's, whatever the allocator.
Routes: any path answers `{"requests": n, "held_bytes": b}`; `GET /held` only reads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

LEAK_BYTES = 32 * 1024


@dataclass
class Visit:
    """What the app keeps of a request (an object the garbage collector tracks)."""

    path: str
    at: float
    payload: bytes


#: Never emptied: the leak.
history: list[Visit] = []


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Append one record per request (except `GET /held`), answer the totals."""
    if scope["type"] != "http":
        raise RuntimeError(f"this app serves HTTP only, not {scope['type']}")
    more = True
    while more:  # drain the body
        message = await receive()
        more = message.get("more_body", False)
    if scope["path"] != "/held":
        # Distinct bytes per record, so nothing is shared or interned.
        stamp = f"{scope['method']} {scope['path']} {time.time()} ".encode()
        payload = (stamp * (LEAK_BYTES // len(stamp) + 1))[:LEAK_BYTES]
        history.append(Visit(scope["path"], time.time(), payload))
    body = json.dumps(
        {"requests": len(history), "held_bytes": sum(len(v.payload) for v in history)}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
