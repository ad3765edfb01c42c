"""A user's own app as the service under test: the spec's `service.app` (ASGI or WSGI).

The supervisor serves `create_app` (a factory) when the config names an app. Each worker then:
- at its lifespan startup does what a synthetic worker does (service.workerstart: die with the
  supervisor, claim its slot, prove its allocator), puts `app_dir` first on its import path and
  imports the app. Any error there is raised in the lifespan startup, so uvicorn logs the
  traceback and stops with its startup-failure code, and the supervisor stops the service
  (EXIT_WORKER_FAILED) instead of restarting a worker that can never start;
- tells ASGI from WSGI (`interface`: auto, asgi or wsgi). A WSGI callable is served by uvicorn's
  own WSGI middleware (a2wsgi's when installed, as uvicorn itself chooses; a thread pool, as any
  threaded WSGI server);
- forwards the lifespan to an ASGI app that supports it (its startup and shutdown run; a failed
  startup fails the worker's), and treats an app that raises on the lifespan scope as one
  without lifespan support, as the ASGI spec says;
- answers the harness itself under service.config.HOSTED_PREFIX: HOSTED_STATS_PATH (the same
  proof and memory fields as the synthetic /stats, plus `app`, `interface`, `heap` and
  `internal`) and HOSTED_HEALTH_PATH (with the idle probe's allocator calls, as the
  synthetic /health); every other request is the app's;
- stamps every answer with X-Worker-Pid (service.churn.WORKER_HEADER). An app that raises
  before answering gets a 500 with that header (and a closed connection), and the exception
  goes on to uvicorn, which logs "Exception in ASGI application" and its traceback in the
  worker's log (ServiceProcess.app_errors reads them back).
There is no X-Live-Bytes: the harness does not know what a user's app keeps.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import sys
import warnings
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.allocators.heap import heap_record
from service.allocators.python import malloc_mode as python_malloc_mode
from service.allocators.stats import internal_record, retention_reading
from service.churn import WORKER_HEADER
from service.config import HOSTED_HEALTH_PATH, HOSTED_STATS_PATH, ServiceConfig, config_from_env
from service.idlework import allocator_calls
from service.process.memory import anon_bytes, rss_anon_bytes
from service.retentionlog import start_retention_log
from service.workerstart import WorkerIdentity, start_worker

__all__ = ["AppLoadError", "HostedApp", "create_app", "detect_interface", "load_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AppLoadError(RuntimeError):
    """The configured app cannot be served as named; str() says what to change."""


def _is_coroutine_callable(obj: Any) -> bool:
    if inspect.iscoroutinefunction(obj):
        return True
    call = getattr(obj, "__call__", None)  # noqa: B004 - an instance's own __call__
    return inspect.iscoroutinefunction(call)


def _positional_parameters(obj: Any) -> int | None:
    """How many positional arguments `obj` takes when called, None when it cannot be read."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in signature.parameters.values()):
        return None
    return sum(1 for p in signature.parameters.values() if p.kind in kinds)


def detect_interface(app: Any, ref: str = "the app") -> str:
    """ "asgi" or "wsgi" for an app object: ASGI 3 apps are coroutine callables of (scope,
    receive, send); WSGI apps are plain callables of (environ, start_response)."""
    if not callable(app):
        raise AppLoadError(f"{ref} is not callable (a {type(app).__name__})")
    if _is_coroutine_callable(app):
        return "asgi"
    count = _positional_parameters(app)
    if count == 2:
        return "wsgi"
    if count == 3:  # a plain function returning an awaitable
        return "asgi"
    raise AppLoadError(f"cannot tell whether {ref} is ASGI or WSGI: set service.interface")


def load_app(ref: str, app_dir: str | None = None) -> Any:
    """Import "module:attr.attr" with `app_dir` first on the import path."""
    if app_dir is not None:
        if not os.path.isdir(app_dir):
            raise AppLoadError(f"app_dir {app_dir} is not a directory")
        if app_dir not in sys.path:
            sys.path.insert(0, app_dir)
    module_name, _, attrs = ref.partition(":")
    obj: Any = importlib.import_module(module_name)  # the app's own errors propagate as they are
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise AppLoadError(f"{module_name} has no attribute {attrs}") from None
    return obj


def _wsgi(app: Any) -> ASGIApp:
    """uvicorn's WSGI adapter, without its deprecation warning for its built-in one."""
    from uvicorn.middleware.wsgi import WSGIMiddleware

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return WSGIMiddleware(app)  # type: ignore[return-value]


def _json_response(status: int, data: Any) -> tuple[Message, Message]:
    body = json.dumps(data, separators=(",", ":")).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (WORKER_HEADER.lower().encode(), str(os.getpid()).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


class _AppLifespan:
    """The user's ASGI app run on a lifespan scope of its own, one event at a time."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self._app = app
        self._scope = scope
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    async def _run(self) -> None:
        try:
            await self._app(self._scope, self._to_app.get, self._from_app.put)
        except BaseException as exc:  # noqa: BLE001 - reported through `error`
            self.error = exc
        finally:
            await self._from_app.put(None)  # the app returned: no more answers

    async def event(self, kind: str) -> Message | None:
        """Send `lifespan.<kind>`; the app's answer, None when it ended without one."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        elif self._task.done():
            return None
        await self._to_app.put({"type": f"lifespan.{kind}"})
        return await self._from_app.get()


class HostedApp:
    """The ASGI app each worker serves: the harness's paths, then the user's app."""

    def __init__(self, config: ServiceConfig | None = None) -> None:
        self._given = config
        self.config = config or ServiceConfig()
        self.identity: WorkerIdentity | None = None
        self.interface: str | None = None
        self._app: ASGIApp | None = None
        self._lifespan: _AppLifespan | None = None

    # --- start-up -------------------------------------------------------------------------

    def start(self) -> None:
        """The worker's start-up duties and the import; raises when the app cannot be served."""
        self.config = self._given or config_from_env()
        self.identity = start_worker(supervised=self._given is None)
        if self.config.app is None:
            raise AppLoadError("the service config names no app (service.app)")
        loaded = load_app(self.config.app, self.config.app_dir)
        interface = self.config.interface
        if interface == "auto":
            interface = detect_interface(loaded, self.config.app)
        self.interface = interface
        self._app = _wsgi(loaded) if interface == "wsgi" else loaded

    async def _serve_lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        self.start()  # raises: uvicorn logs the traceback, the worker fails to start
        if self.interface == "asgi" and self._app is not None:
            forwarded = _AppLifespan(self._app, scope)
            answer = await forwarded.event("startup")
            if answer is not None and answer["type"] == "lifespan.startup.failed":
                await send(dict(answer))  # uvicorn logs its message and stops the worker
                return
            self._lifespan = forwarded if answer is not None else None
        log = start_retention_log(retention_reading)  # after the app's own start-up
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        if log is not None:
            log.cancel()
        if self._lifespan is not None:
            await self._lifespan.event("shutdown")
        if self.identity is not None:
            self.identity.release()
        await send({"type": "lifespan.shutdown.complete"})

    # --- requests ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """This worker's stats (see the module doc)."""
        identity = self.identity
        return {
            "pid": os.getpid(),
            "worker": identity.index if identity is not None else -1,
            "malloc_library": identity.malloc_library if identity is not None else None,
            "allocator_version": identity.allocator_version if identity is not None else None,
            "pythonmalloc": python_malloc_mode(),
            "knobs": identity.knobs if identity is not None else None,
            "pss_anon_bytes": anon_bytes(),
            "rss_anon_bytes": rss_anon_bytes(),
            "config": self.config.to_dict(),
            "app": self.config.app,
            "interface": self.interface,
            "heap": heap_record(),
            "internal": internal_record(),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._serve_lifespan(scope, receive, send)
            return
        if kind == "http" and scope["path"] in (HOSTED_STATS_PATH, HOSTED_HEALTH_PATH):
            if scope["path"] == HOSTED_STATS_PATH:
                start, body = _json_response(200, self.stats())
            else:
                cfg = self.config
                calls = allocator_calls(cfg.idle_probe_blocks, cfg.idle_probe_block_bytes)
                start, body = _json_response(
                    200, {"status": "ok", "pid": os.getpid(), "allocator_calls": calls}
                )
            await send(start)
            await send(body)
            return
        if self._app is None:
            raise RuntimeError("the hosted app has not started")
        await self._call_app(scope, receive, send)

    async def _call_app(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The user's app, every answer stamped with this worker's pid."""
        pid = str(os.getpid()).encode()
        header = WORKER_HEADER.lower().encode()
        started = False

        async def stamped(message: Message) -> None:
            nonlocal started
            if message["type"] in ("http.response.start", "websocket.accept"):
                started = True
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), (header, pid)]
            await send(message)

        assert self._app is not None
        try:
            await self._app(scope, receive, stamped)
        except Exception:
            if scope["type"] == "http" and not started:
                start, body = _json_response(500, {"error": "the app raised an exception"})
                start["headers"].append((b"connection", b"close"))
                await send(start)
                await send(body)
            raise  # uvicorn logs "Exception in ASGI application" with the traceback


def create_app() -> HostedApp:
    """The app factory the supervisor names; each worker reads ALLOCSTUDY_SERVICE_CONFIG at
    its lifespan startup (never here: an error here would be retried forever)."""
    return HostedApp()
