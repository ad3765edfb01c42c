"""The FastAPI service under test: churn, JSON and XML work, and per-worker evidence.

Endpoints (every response body is JSON unless said otherwise):
- `POST /churn`: one churn of this worker's live set (see service.churn). A body is ignored
  and may be empty; over 4 KiB it is refused. Answers
  `{"pid", "worker", "freed", "freed_bytes", "allocated", "allocated_bytes", "live_count",
  "live_bytes", "long_count", "evicted", "calls"}`.
- `POST /json`: an order document (`Content-Type: application/json`, at most 1 MiB);
  answers its summary as JSON (see service.documents).
- `POST /xml`: the same as XML (`application/xml` or `text/xml`); answers XML.
- `GET /stats`: this worker's pid and index, the library serving malloc (dladdr), the
  allocator's own version, the PYTHONMALLOC mode, the read-back of the allocator settings
  ALLOCSTUDY_KNOBS asked for at start-up (`knobs`, service.allocators.knobs; null when none), the
  live set (`live_count`, `live_bytes`,
  `long_count`, `short_count`, `churn_calls`), and this process's anonymous memory
  (`pss_anon_bytes` from smaps_rollup, `rss_anon_bytes` from status), and the program's own
  live heap beside it (`heap`: service.allocators.heap, the allocator's count of bytes in use
  and the interpreter's block and object counts), and the allocator's own statistics
  (`internal`: service.allocators.stats, bytes per field with their source, and why any
  field is absent).
- `GET /health`: `{"status": "ok", "pid", "allocator_calls"}`, the last the malloc/free
  pairs the config's `idle_probe_blocks` asked of it (service.idlework; none by default).
Every answer of /churn, /json, /xml and /health names the worker and its live payload after
the request in the headers X-Worker-Pid and X-Live-Bytes, so the load generator records the
live payload over time (expiry included) without parsing bodies.
A request the service refuses gets a 4xx with `{"error": "..."}`: 400 unreadable body, 408
a body not whole within the config's `body_timeout_s` (the connection is closed after it),
413 too large, 415 wrong content type, 422 not an order; 404 and 405 answer the same way.
What uvicorn's HTTP parser refuses before the app sees it (a Content-Length that is not a
non-negative number, two of them) gets uvicorn's plain-text 400 and a closed connection.

Each worker allocates its start-up buffers (`initial_buffers`) in the lifespan startup, so it
is ready only once they are in place and resident; the rest of the live set is built by
/churn traffic. Every request but /stats first frees the short-lived buffers whose time ran
out (a lazily expiring cache); /stats reads without changing anything.

Every handler is `async def`: all the allocating work of a worker runs on its event loop
thread, one request at a time, so the live set needs no lock and the allocator sees one working
thread per process (the GIL would serialize a thread pool anyway).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from service.allocators.heap import heap_record
from service.allocators.python import malloc_mode as python_malloc_mode
from service.allocators.stats import internal_record, retention_reading
from service.bodies import (
    CHURN_BODY_LIMIT,
    DOCUMENT_BODY_LIMIT,
    RequestRejected,
    check_content_type,
    read_bounded,
)
from service.churn import LIVE_BYTES_HEADER, WORKER_HEADER, LiveSet, worker_rng
from service.config import ServiceConfig, config_from_env
from service.documents import parse_json, parse_xml, render_json, render_xml, summarize
from service.idlework import allocator_calls
from service.process.memory import anon_bytes, rss_anon_bytes
from service.retentionlog import start_retention_log
from service.workerstart import WorkerIdentity, start_worker

__all__ = ["create_app"]

JSON_TYPES = ("application/json",)
XML_TYPES = ("application/xml", "text/xml")


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data, separators=(",", ":")), status, media_type="application/json")


class _Worker:
    """What one worker process holds between requests, set up by the lifespan."""

    def __init__(self, config: ServiceConfig | None) -> None:
        self._given = config
        self.config = config or ServiceConfig()
        self.identity: WorkerIdentity | None = None
        self.live: LiveSet | None = None
        self.malloc_library = ""
        self.allocator_version: str | None = None
        self.knobs: dict[str, Any] | None = None

    def start(self) -> None:
        # Read the environment here, not in create_app: an error in the lifespan startup makes
        # uvicorn stop with its startup-failure code instead of restarting the worker forever.
        self.config = self._given or config_from_env()
        # A real worker under the supervisor, unless a test gave the config in-process.
        self.identity = start_worker(supervised=self._given is None)
        self.malloc_library = self.identity.malloc_library
        self.allocator_version = self.identity.allocator_version
        self.knobs = self.identity.knobs
        live = LiveSet(self.config.churn, worker_rng(self.config.churn.seed, self.index))
        live.fill()
        self.live = live

    def stop(self) -> None:
        if self.live is not None:
            self.live.clear()
        if self.identity is not None:
            self.identity.release()

    @property
    def live_set(self) -> LiveSet:
        if self.live is None:
            raise RuntimeError("the worker has not started")
        return self.live

    @property
    def index(self) -> int:
        return self.identity.index if self.identity is not None else -1


def _with_live(response: Response, live_bytes: int) -> Response:
    """Say which worker answered and the live payload it holds now (see the module doc)."""
    response.headers[WORKER_HEADER] = str(os.getpid())
    response.headers[LIVE_BYTES_HEADER] = str(live_bytes)
    return response


async def _body(request: Request, limit: int, timeout_s: float) -> bytes:
    try:
        return await read_bounded(
            request.stream(), request.headers.get("content-length"), limit, timeout_s=timeout_s
        )
    except ClientDisconnect:
        raise RequestRejected(400, "the client disconnected while sending the body") from None


def create_app(config: ServiceConfig | None = None) -> FastAPI:
    """The app; without `config`, each worker reads ALLOCSTUDY_SERVICE_CONFIG at startup."""
    worker = _Worker(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker.start()
        log = start_retention_log(retention_reading)  # after the start-up buffers are in place
        try:
            yield
        finally:
            if log is not None:
                log.cancel()
            worker.stop()

    app = FastAPI(
        title="allocstudy service",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(RequestRejected)
    async def _rejected(request: Request, exc: RequestRejected) -> Response:
        response = _json({"error": exc.message}, exc.status)
        if exc.close:  # uvicorn closes the connection after an answer that says so
            response.headers["connection"] = "close"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return _json({"error": str(exc.detail)}, exc.status_code)

    @app.post("/churn")
    async def churn(request: Request) -> Response:
        await _body(request, CHURN_BODY_LIMIT, worker.config.body_timeout_s)
        result = worker.live_set.churn(time.monotonic())
        response = _json(
            {
                "pid": os.getpid(),
                "worker": worker.index,
                "freed": result.freed,
                "freed_bytes": result.freed_bytes,
                "allocated": result.allocated,
                "allocated_bytes": result.allocated_bytes,
                "live_count": result.live_count,
                "live_bytes": result.live_bytes,
                "long_count": result.long_count,
                "evicted": result.evicted,
                "calls": worker.live_set.calls,
            }
        )
        return _with_live(response, result.live_bytes)

    @app.post("/json")
    async def json_document(request: Request) -> Response:
        worker.live_set.expire(time.monotonic())
        check_content_type(request.headers.get("content-type"), JSON_TYPES)
        order = parse_json(await _body(request, DOCUMENT_BODY_LIMIT, worker.config.body_timeout_s))
        response = Response(render_json(summarize(order)), media_type="application/json")
        return _with_live(response, worker.live_set.nbytes)

    @app.post("/xml")
    async def xml_document(request: Request) -> Response:
        worker.live_set.expire(time.monotonic())
        check_content_type(request.headers.get("content-type"), XML_TYPES)
        order = parse_xml(await _body(request, DOCUMENT_BODY_LIMIT, worker.config.body_timeout_s))
        response = Response(render_xml(summarize(order)), media_type="application/xml")
        return _with_live(response, worker.live_set.nbytes)

    @app.get("/stats")
    async def stats() -> Response:
        live = worker.live_set
        return _json(
            {
                "pid": os.getpid(),
                "worker": worker.index,
                "malloc_library": worker.malloc_library,
                "allocator_version": worker.allocator_version,
                "pythonmalloc": python_malloc_mode(),
                "knobs": worker.knobs,
                "live_count": live.count,
                "live_bytes": live.nbytes,
                "long_count": live.long_count,
                "short_count": live.short_count,
                "churn_calls": live.calls,
                "pss_anon_bytes": anon_bytes(),
                "rss_anon_bytes": rss_anon_bytes(),
                "heap": heap_record(),
                "internal": internal_record(),
                "config": worker.config.to_dict(),
            }
        )

    @app.get("/health")
    async def health() -> Response:
        worker.live_set.expire(time.monotonic())  # a TTL cache notices expiry on any request
        cfg = worker.config
        calls = allocator_calls(cfg.idle_probe_blocks, cfg.idle_probe_block_bytes)
        body = {"status": "ok", "pid": os.getpid(), "allocator_calls": calls}
        return _with_live(_json(body), worker.live_set.nbytes)

    return app
