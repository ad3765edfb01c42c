"""service.tracebacks: a worker log's tracebacks, condensed to the app's own frames."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

from service.tracebacks import condensed, first_traceback, parse_tracebacks

SITE = sysconfig.get_paths()["purelib"]

IMPORT_FAILURE = f"""\
INFO:     Started server process [4242]
ERROR:    Exception in 'lifespan' protocol
Traceback (most recent call last):
  File "{SITE}/uvicorn/lifespan/on.py", line 86, in main
    await app(scope, self.receive, self.send)
  File "/repo/service/hosted.py", line 187, in _serve_lifespan
    self.start()  # raises
    ^^^^^^^^^^^^
  File "<frozen importlib._bootstrap>", line 1204, in _gcd_import
  File "/srv/shop/app.py", line 17, in <module>
    DATABASE_URL = _database_url()
                   ^^^^^^^^^^^^^^^
  File "/srv/shop/settings.py", line 13, in _database_url
    raise RuntimeError("no database")
RuntimeError: no database
ERROR:    Application startup failed. Exiting.
"""


def test_an_import_failure_condenses_to_its_exception_and_the_apps_frames():
    tb = first_traceback(IMPORT_FAILURE)
    assert tb is not None
    assert condensed(tb, limit=4) == [
        "RuntimeError: no database",
        "/srv/shop/app.py:17 in <module>: DATABASE_URL = _database_url()",
        '/srv/shop/settings.py:13 in _database_url: raise RuntimeError("no database")',
    ]
    assert condensed(tb, limit=2) == [
        "RuntimeError: no database",
        '/srv/shop/settings.py:13 in _database_url: raise RuntimeError("no database")',
    ]
    assert condensed(tb, limit=1) == ["RuntimeError: no database"]
    assert condensed(tb, limit=0) == []


def test_a_traceback_logged_as_a_message_and_a_chained_one_are_both_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)  # the installed files lie outside it: shown absolute
    log = f"""\
ERROR:    Traceback (most recent call last):
  File "{SITE}/starlette/routing.py", line 661, in lifespan
    async with self.lifespan_context(app) as maybe_state:
KeyError: 'REDIS_URL'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/shop/cache.py", line 3, in connect
    raise ConnectionRefusedError("no cache")
ConnectionRefusedError: no cache
"""
    found = parse_tracebacks(log)
    assert [tb.exception for tb in found] == [
        "KeyError: 'REDIS_URL'",
        "ConnectionRefusedError: no cache",
    ]
    # Only installed frames: the innermost of them are kept rather than nothing.
    assert condensed(found[0]) == [
        "KeyError: 'REDIS_URL'",
        f"{SITE}/starlette/routing.py:661 in lifespan: "
        "async with self.lifespan_context(app) as maybe_state:",
    ]


def test_a_syntax_error_keeps_its_message_and_a_log_without_traceback_has_none():
    log = """\
Traceback (most recent call last):
  File "/srv/shop/app.py", line 3
    def (
        ^
SyntaxError: invalid syntax
"""
    tb = first_traceback(log)
    assert tb is not None and tb.exception == "SyntaxError: invalid syntax"
    assert condensed(tb)[1] == "/srv/shop/app.py:3: def ("
    assert first_traceback("INFO: all is well\nWARNING: still well\n") is None
