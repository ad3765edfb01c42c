"""An app that cannot start: it raises while it is imported, as a service missing its settings
does. allocstudy must report it in one line, with the first lines of the traceback, and go on.
"""

from __future__ import annotations

import os


def _database_url() -> str:
    url = os.environ.get("NOTES_DATABASE_URL")
    if not url:
        raise RuntimeError("NOTES_DATABASE_URL is not set: the notes app has no database")
    return url


DATABASE_URL = _database_url()


async def app(scope, receive, send):  # type: ignore[no-untyped-def]  # never reached
    raise NotImplementedError
