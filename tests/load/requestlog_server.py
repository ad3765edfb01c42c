"""A loopback server that logs every request it gets, standing in for a hosted app.

Run as ``python tests/load/requestlog_server.py LOG``: it binds 127.0.0.1 on a free port,
prints the port on stdout, answers every method on every path with 200, and appends one JSON
line per request to LOG (method, path with query, content type, the X-Trace header, body).
Its answers carry X-Worker-Pid and no X-Live-Bytes, as a hosted app's do.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable

from aiohttp import web

__all__ = ["main", "serve"]


def make_app(log_path: str) -> web.Application:
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - open for the server's life

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        record = {
            "method": request.method,
            "path": request.path_qs,
            "content_type": request.headers.get("Content-Type"),
            "trace": request.headers.get("X-Trace"),
            "body": body.decode("utf-8", "replace"),
        }
        log.write(json.dumps(record) + "\n")
        log.flush()
        return web.Response(text="ok", headers={"X-Worker-Pid": str(os.getpid())})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def _serve(app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


def serve(make: Callable[[str], web.Application]) -> None:
    """Serve the app `make` builds for the log file named on the command line, on a free
    loopback port printed first, until killed (the flow server's too)."""
    try:
        asyncio.run(_serve(make(sys.argv[1])))
    except KeyboardInterrupt:
        sys.exit(0)


def main() -> None:
    serve(make_app)


if __name__ == "__main__":
    main()
