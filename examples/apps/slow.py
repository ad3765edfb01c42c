"""An app too slow for the load asked of it, on purpose: every request holds its worker.

Each request computes for SERVICE_S seconds without yielding (as a synchronous ORM call or a
template rendering does inside an async handler), so one worker serves at most 1 / SERVICE_S
requests a second. Asked for more, an open-loop load queues and times out: allocstudy must
call the repeat saturated, leave it out of every ranking and exit with its own code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

#: Seconds of work per request: 20 requests a second per worker at the most.
SERVICE_S = 0.05


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    """Busy-wait SERVICE_S seconds (the worker serves nothing else meanwhile), answer."""
    if scope["type"] != "http":
        raise RuntimeError(f"this app serves HTTP only, not {scope['type']}")
    more = True
    while more:  # drain the body
        message = await receive()
        more = message.get("more_body", False)
    end = time.perf_counter() + SERVICE_S
    spins = 0
    while time.perf_counter() < end:
        spins += 1
    body = json.dumps({"path": scope["path"], "spins": spins}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
