"""service.hosted: a user's ASGI or WSGI app served, proven and measured like the synthetic one.

The in-process tests drive service.hosted.HostedApp through Starlette's test client; the
others start the example apps (examples/apps) under the real launcher, supervisor and preloads.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_support import LIBRARIES, expected_library, start

from service.churn import WORKER_HEADER
from service.config import HOSTED_HEALTH_PATH, HOSTED_STATS_PATH, ServiceConfig
from service.hosted import AppLoadError, HostedApp, detect_interface
from service.launcher import LaunchError, ServiceProcess
from service.recycling import READY_TAG
from service.reportlines import MESSAGE_PREFIX

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what we have
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

APPS = Path(__file__).resolve().parents[2] / "examples" / "apps"
STATS_KEYS = {
    "pid",
    "worker",
    "malloc_library",
    "allocator_version",
    "pythonmalloc",
    "knobs",
    "pss_anon_bytes",
    "rss_anon_bytes",
    "config",
    "app",
    "interface",
    "heap",
    "internal",
}


def _config(app: str, app_dir: Path = APPS, **more: Any) -> dict[str, Any]:
    return {"workers": 2, "app": app, "app_dir": str(app_dir), **more}


def _write_app(directory: Path, name: str, code: str) -> str:
    (directory / f"{name}.py").write_text(textwrap.dedent(code))
    return f"{name}:app"


@pytest.fixture(autouse=True)
def _forget_imported_apps() -> Iterator[None]:
    """In-process tests import their apps here: each test gets its own fresh copy."""
    modules, path = set(sys.modules), list(sys.path)
    yield
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def _request(
    service: ServiceProcess, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _group_left(pgid: int) -> list[int]:
    """Live processes still in process group `pgid`."""
    left = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            left.append(int(entry))
    return left


# ---------------------------------------------------------------------------------------------
# In-process: detection, the harness paths, the lifespan, the worker header


def test_asgi_and_wsgi_apps_are_told_apart() -> None:
    async def asgi(scope: Any, receive: Any, send: Any) -> None: ...

    def wsgi(environ: Any, start_response: Any) -> list[bytes]:
        return []

    class AsgiClass:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...

    class WsgiClass:
        def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
            return []

    sys.path.insert(0, str(APPS))
    try:
        import notes_asgi
        import notes_wsgi
    finally:
        sys.path.remove(str(APPS))
    assert [detect_interface(a) for a in (asgi, AsgiClass(), notes_asgi.app)] == ["asgi"] * 3
    assert [detect_interface(a) for a in (wsgi, WsgiClass(), notes_wsgi.app)] == ["wsgi"] * 3
    with pytest.raises(AppLoadError, match="cannot tell whether x:app is ASGI or WSGI"):
        detect_interface(lambda scope: None, "x:app")
    with pytest.raises(AppLoadError, match="is not callable"):
        detect_interface(42, "x:app")


def test_a_hosted_worker_carries_none_of_the_synthetic_apps_weight() -> None:
    # What the worker imports is in the memory measured: the app's own, not FastAPI's.
    code = (
        "import sys, service.hosted, service.supervisor, service.workerprocess; "
        "print(sorted(sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    for heavy in ("fastapi", "starlette", "pydantic", "bench", "service.app", "service.documents"):
        assert f"'{heavy}'" not in done.stdout


@pytest.fixture()
def lifespan_app(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """A Starlette app whose lifespan writes down its startup and shutdown."""
    marks = tmp_path / "marks.txt"
    ref = _write_app(
        tmp_path,
        "lifespan_notes",
        f"""
        import contextlib
        from starlette.applications import Starlette
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        @contextlib.asynccontextmanager
        async def lifespan(app):
            open({str(marks)!r}, "a").write("startup\\n")
            yield {{"greeting": "hello"}}
            open({str(marks)!r}, "a").write("shutdown\\n")

        async def hello(request):
            return JSONResponse({{"greeting": request.state.greeting}})

        async def boom(request):
            return 1 / 0

        app = Starlette(routes=[Route("/hello", hello), Route("/boom", boom)], lifespan=lifespan)
        """,
    )
    config = ServiceConfig.from_dict(_config(ref, tmp_path))
    with TestClient(HostedApp(config), raise_server_exceptions=False) as client:
        yield client, marks
    assert marks.read_text() == "startup\nshutdown\n"


def test_the_apps_lifespan_runs_and_its_state_reaches_requests(
    lifespan_app: tuple[TestClient, Path],
) -> None:
    client, marks = lifespan_app
    assert marks.read_text() == "startup\n"
    answer = client.get("/hello")
    assert answer.json() == {"greeting": "hello"}
    assert answer.headers[WORKER_HEADER] == str(os.getpid())


def test_the_harness_answers_its_own_paths_with_the_stats_of_the_contract(
    lifespan_app: tuple[TestClient, Path],
) -> None:
    client, _ = lifespan_app
    stats = client.get(HOSTED_STATS_PATH).json()
    assert set(stats) == STATS_KEYS
    assert stats["app"] == "lifespan_notes:app" and stats["interface"] == "asgi"
    assert stats["malloc_library"] == expected_library("glibc")
    assert set(stats["heap"]) == {
        "malloc_in_use_bytes",
        "malloc_source",
        "python_blocks",
        "gc_objects",
        "gc_counts",
    }
    assert stats["internal"]["malloc"]["family"] == "glibc"  # as the synthetic /stats has it
    assert stats["internal"]["malloc"]["bytes"]["live"] > 0
    health = client.get(HOSTED_HEALTH_PATH)
    assert health.json() == {"status": "ok", "pid": os.getpid(), "allocator_calls": 0}
    assert health.headers[WORKER_HEADER] == str(os.getpid())
    missing = client.get("/no/such/route")  # the app's own 404, stamped
    assert missing.status_code == 404 and missing.headers[WORKER_HEADER] == str(os.getpid())


def test_an_app_that_raises_answers_500_with_the_worker_pid(
    lifespan_app: tuple[TestClient, Path],
) -> None:
    client, _ = lifespan_app
    answer = client.get("/boom")
    assert answer.status_code == 500
    assert answer.headers[WORKER_HEADER] == str(os.getpid())


def test_a_raw_asgi_app_without_lifespan_support_still_serves(tmp_path: Path) -> None:
    ref = _write_app(
        tmp_path,
        "no_lifespan",
        """
        async def app(scope, receive, send):
            assert scope["type"] == "http"  # refuses the lifespan scope, as the spec allows
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        """,
    )
    with TestClient(HostedApp(ServiceConfig.from_dict(_config(ref, tmp_path)))) as client:
        answer = client.get("/")
    assert answer.status_code == 204 and answer.headers[WORKER_HEADER] == str(os.getpid())


# ---------------------------------------------------------------------------------------------
# The example apps under the real launcher


@pytest.mark.parametrize(
    ("ref", "allocator", "interface"),
    [("notes_asgi:app", "glibc", "asgi"), ("notes_wsgi:app", "jemalloc", "wsgi")],
)
def test_an_example_app_serves_its_routes_from_two_proven_workers(
    ref: str, allocator: str, interface: str, tmp_path: Path
) -> None:
    logs = tmp_path / "workers"
    with start(allocator, service_config=_config(ref), worker_log_dir=logs) as service:
        stats = service.stats_from_every_worker(timeout=15)
        assert sorted(stats) == service.worker_pids() and len(stats) == 2
        for worker in stats.values():
            assert set(worker) == STATS_KEYS
            assert worker["malloc_library"] == expected_library(allocator)
            assert worker["allocator_version"] and worker["interface"] == interface
            assert worker["heap"]["malloc_in_use_bytes"] > 0 and worker["heap"]["malloc_source"]
        assert sorted(w["worker"] for w in stats.values()) == [0, 1]

        note = {"title": "Groceries", "body": "eggs and milk and bread", "tags": ["home"]}
        status, headers, body = _request(service, "POST", "/notes", note)
        assert status == 201 and int(headers[WORKER_HEADER.lower()]) in stats
        note_id = json.loads(body)["id"]
        order = {"customer": "ada", "items": [{"sku": "A1", "qty": 2, "price": 9.5}]}
        status, headers, body = _request(service, "POST", "/orders", order)
        assert status == 201 and json.loads(body)["total"] == 22.8
        assert int(headers[WORKER_HEADER.lower()]) in stats
        status, headers, _ = _request(service, "GET", "/report")
        assert status == 200 and int(headers[WORKER_HEADER.lower()]) in stats
        status, _, _ = _request(service, "POST", "/orders", {"items": "nonsense"})
        assert status == 422
        assert _request(service, "GET", "/notes/" + note_id)[0] in (200, 404)  # its worker's
        assert service.app_errors() == []
    assert sorted(p.name for p in logs.iterdir()) == ["worker-0-0.log", "worker-1-0.log"]


def test_an_app_that_fails_to_import_is_one_line_with_its_traceback(tmp_path: Path) -> None:
    spawned: list[int] = []
    with pytest.raises(LaunchError) as caught:
        start(
            "glibc",
            service_config=_config("broken:app"),
            worker_log_dir=tmp_path / "workers",
            on_spawn=spawned.append,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("the service stopped because a worker failed to start")
    assert "RuntimeError: NOTES_DATABASE_URL is not set: the notes app has no database" in message
    shown = os.path.relpath(APPS / "broken.py")  # relative to the current directory
    assert f"{shown}:13 in _database_url: raise RuntimeError(" in message
    assert "hosted.py" not in message and "importlib" not in message
    assert _group_left(spawned[0]) == []


def test_an_app_that_crashes_its_worker_at_import_is_one_line(tmp_path: Path) -> None:
    ref = _write_app(tmp_path, "crashes", "import ctypes\nctypes.string_at(0)  # SIGSEGV\n")
    spawned: list[int] = []
    with pytest.raises(LaunchError) as caught:
        start(
            "glibc",
            service_config=_config(ref, tmp_path),
            worker_log_dir=tmp_path / "w",
            on_spawn=spawned.append,
            ready_timeout=20,
        )
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("workers keep dying at startup")
    assert str(caught.value).endswith("was killed by SIGSEGV")
    assert _group_left(spawned[0]) == []


def test_an_app_whose_startup_fails_stops_the_service_with_its_exception(
    tmp_path: Path,
) -> None:
    ref = _write_app(
        tmp_path,
        "startup_fails",
        """
        import contextlib
        from starlette.applications import Starlette

        @contextlib.asynccontextmanager
        async def connect(app):
            raise ConnectionRefusedError("the cache at 127.0.0.1:6379 refused the connection")
            yield

        app = Starlette(lifespan=connect)
        """,
    )
    with pytest.raises(LaunchError, match="ConnectionRefusedError: the cache at 127.0.0.1:6379"):
        start("glibc", service_config=_config(ref, tmp_path), worker_log_dir=tmp_path / "w")


def test_the_apps_output_goes_to_its_worker_log_and_reports_to_the_supervisors(
    tmp_path: Path,
) -> None:
    ref = _write_app(
        tmp_path,
        "chatty",
        """
        import logging, os, sys
        print("imported in", os.getpid(), "greeting", os.environ["GREETING"], flush=True)

        def app(environ, start_response):
            if environ["PATH_INFO"] == "/boom":
                raise KeyError("no such customer")
            print("served", environ["PATH_INFO"], file=sys.stderr, flush=True)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        """,
    )
    logs = tmp_path / "workers"
    # A request limit makes each worker report that it serves (a report line).
    config = _config(ref, tmp_path, max_requests=1000, env={"GREETING": "hi"})
    with start("glibc", service_config=config, worker_log_dir=logs) as service:
        pids = service.worker_pids()
        status, headers, _ = _request(service, "GET", "/hello")
        assert status == 200 and int(headers[WORKER_HEADER.lower()]) in pids
        status, headers, _ = _request(service, "GET", "/boom")
        assert status == 500 and int(headers[WORKER_HEADER.lower()]) in pids
        deadline = time.monotonic() + 5  # uvicorn logs the exception after the 500 is sent
        while not (errors := service.app_errors(limit=3)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert errors[0] == "KeyError: 'no such customer'"
        assert errors[1:] == [
            f'{tmp_path / "chatty.py"}:7 in app: raise KeyError("no such customer")'
        ]
        supervisor_log = service.log_path.read_text()
    worker_logs = {p.name: p.read_text() for p in logs.iterdir()}
    assert sorted(worker_logs) == ["worker-0-0.log", "worker-1-0.log"]
    assert all("greeting hi" in text for text in worker_logs.values())  # the config's env
    assert "served /hello" in "".join(worker_logs.values())
    assert "Exception in ASGI application" in "".join(worker_logs.values())
    assert not any(MESSAGE_PREFIX in text for text in worker_logs.values())
    assert supervisor_log.count(f"{MESSAGE_PREFIX} {READY_TAG} ") == 2, supervisor_log
    assert "imported in" not in supervisor_log and "KeyError" not in supervisor_log


@pytest.mark.parametrize("allocator", list(LIBRARIES))
def test_the_leaky_apps_heap_grows_with_its_requests(allocator: str) -> None:
    with start(allocator, workers=1, service_config=_config("leaky:app", workers=1)) as service:
        (before,) = service.stats_from_every_worker().values()
        for _ in range(200):
            status, _, _ = _request(service, "POST", "/orders")
            assert status == 200
        (after,) = service.stats_from_every_worker().values()
    grown = after["heap"]["malloc_in_use_bytes"] - before["heap"]["malloc_in_use_bytes"]
    assert 200 * 32 * 1024 <= grown <= 200 * 48 * 1024, grown
    assert after["heap"]["python_blocks"] - before["heap"]["python_blocks"] >= 200
    # gc_objects also counts garbage not yet collected (the stats never force a collection,
    # which would disturb the memory being measured), so its change is no test of the leak.
    assert after["heap"]["gc_objects"] > 0


def test_the_harness_health_check_makes_the_idle_probes_allocator_calls() -> None:
    config = ServiceConfig.from_dict(_config("notes_asgi:app", idle_probe={"blocks": 7}))
    with TestClient(HostedApp(config)) as client:
        assert client.get(HOSTED_HEALTH_PATH).json()["allocator_calls"] == 7
