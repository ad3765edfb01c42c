"""A loopback server that keeps notes, standing in for an app a flow creates, reads, deletes.

Run as ``python tests/load/flow_server.py LOG``: it binds 127.0.0.1 on a free port, prints the
port on stdout, and appends one JSON line per request to LOG (method, path, the client's port,
what it answered, its Authorization and X-Note headers). `POST /notes` stores a note and
answers {"id": ...} (201); `GET` and `DELETE /notes/{id}` answer 200 for a note it holds,
404 otherwise; `POST /broken` answers 500; `POST /anonymous` answers 201 with JSON holding
no id.
"""

from __future__ import annotations

import itertools
import json
import os

from aiohttp import web
from requestlog_server import serve  # its folder is first on the path when run as a script

__all__ = ["main"]


def make_app(log_path: str) -> web.Application:
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 - open for the server's life
    notes: dict[str, str] = {}
    ids = itertools.count(1)

    def logged(request: web.Request, status: int, data: object) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = {
            "method": request.method,
            "path": request.path,
            "client_port": peer[1] if peer else None,
            "status": status,
            "authorization": request.headers.get("Authorization"),
            "note_header": request.headers.get("X-Note"),
        }
        log.write(json.dumps(record) + "\n")
        log.flush()
        return web.json_response(data, status=status, headers={"X-Worker-Pid": str(os.getpid())})

    async def create(request: web.Request) -> web.Response:
        note_id = f"n{next(ids)}"
        notes[note_id] = await request.text()
        return logged(request, 201, {"id": note_id, "items": [{"id": note_id}]})

    async def one(request: web.Request) -> web.Response:
        note_id = request.match_info["note_id"]
        if note_id not in notes:
            return logged(request, 404, {"error": "no such note"})
        if request.method == "DELETE":
            del notes[note_id]
        return logged(request, 200, {"id": note_id})

    async def broken(request: web.Request) -> web.Response:
        return logged(request, 500, {"error": "broken"})

    async def anonymous(request: web.Request) -> web.Response:
        return logged(request, 201, {"name": "no id here"})

    async def other(request: web.Request) -> web.Response:
        return logged(request, 200, {"ok": True})

    app = web.Application()
    app.router.add_post("/notes", create)
    app.router.add_route("GET", "/notes/{note_id}", one)
    app.router.add_route("DELETE", "/notes/{note_id}", one)
    app.router.add_post("/broken", broken)
    app.router.add_post("/anonymous", anonymous)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


def main() -> None:
    serve(make_app)


if __name__ == "__main__":
    main()
