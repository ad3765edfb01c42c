"""A tiny loopback HTTP server standing in for the service in the load generator's tests.

Run as ``python tests/load/loadgen_server.py [--delay S]``: it binds 127.0.0.1 on a free port,
prints that port on stdout, and answers /churn, /json, /xml and /health after `delay` seconds
(0 by default), so the tests do not depend on the service package's start-up or its cost.
GET /peers answers how many client connections (distinct client ports) it has seen.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

__all__ = ["make_app", "main"]


def make_app(delay: float) -> web.Application:
    """An app whose every endpoint reads the body, waits `delay` s and answers 200."""

    peers: set[object] = set()

    async def answer(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        await request.read()
        if delay > 0:
            await asyncio.sleep(delay)
        return web.Response(text="ok")

    async def count_peers(request: web.Request) -> web.Response:
        return web.Response(text=str(len(peers)))

    app = web.Application()
    app.router.add_get("/peers", count_peers)
    for path in ("/churn", "/json", "/xml"):
        app.router.add_post(path, answer)
    app.router.add_get("/health", answer)
    return app


async def _serve(delay: float) -> None:
    runner = web.AppRunner(make_app(delay), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    print(port, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    try:
        asyncio.run(_serve(args.delay))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
