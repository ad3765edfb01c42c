"""Limits on what a client may send, enforced before any parsing.

A body is read chunk by chunk and refused (413) as soon as it passes its limit, or before the
first chunk when Content-Length already says it is too large, so no request can make a worker
buffer an unbounded body. It must also arrive whole within a deadline (408, and the connection
is closed): uvicorn has no body timeout, so without one a client dripping a byte a second, or
declaring more than it sends, holds a request and its connection open for as long as it likes.
Content types are checked first (415). Each refusal is a `RequestRejected` carrying the HTTP
status and a short message, turned into `{"error": ...}` by the app.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

__all__ = [
    "BODY_TIMEOUT_S",
    "CHURN_BODY_LIMIT",
    "DOCUMENT_BODY_LIMIT",
    "RequestRejected",
    "check_content_type",
    "read_bounded",
]

#: Largest JSON or XML document accepted, bytes (the generated ones are a few KB to tens of KB).
DOCUMENT_BODY_LIMIT = 1 << 20
#: /churn ignores its body; a client may send a tiny one, never a large one.
CHURN_BODY_LIMIT = 4096
#: Seconds a whole body may take to arrive (the load generator's own request timeout is 10 s;
#: a 1 MiB body over loopback takes milliseconds).
BODY_TIMEOUT_S = 10.0


class RequestRejected(Exception):
    """A request refused for what the client sent: an HTTP status (4xx) and a short reason.

    `close` asks for the connection to be closed after the answer: the client may still be
    sending a body nobody will read.
    """

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


def check_content_type(header: str | None, accepted: Iterable[str]) -> None:
    """Refuse (415) a body whose media type (parameters aside) is not one of `accepted`."""
    accepted = tuple(accepted)
    media_type = (header or "").split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        shown = media_type or "none"
        raise RequestRejected(415, f"content type {shown[:60]!r} is not {' or '.join(accepted)}")


async def read_bounded(
    chunks: AsyncIterator[bytes],
    content_length: str | None,
    limit: int,
    *,
    timeout_s: float | None = BODY_TIMEOUT_S,
) -> bytes:
    """The whole body, or RequestRejected: 413 once it would exceed `limit` bytes, 408 when it
    has not arrived whole within `timeout_s` seconds (None: no deadline)."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise RequestRejected(400, "Content-Length is not a number") from None
        if declared < 0:
            raise RequestRejected(400, "Content-Length is negative")
        if declared > limit:
            raise RequestRejected(413, f"body of {declared} bytes exceeds the {limit} byte limit")
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise RequestRejected(413, f"body exceeds the {limit} byte limit")
                parts.append(chunk)
    except TimeoutError:
        raise RequestRejected(
            408, f"the body did not arrive within {timeout_s:g} s", close=True
        ) from None
    return b"".join(parts)
