"""service.launcher and service.supervisor against the real thing: uvicorn workers under LD_PRELOAD.

Every test here but the socket ones starts real processes.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_support import SMALL_CONFIG, expected_library, free_port, start, wait_gone

from service.config import CONFIG_ENV
from service.launcher import LaunchError, ServiceProcess, start_service
from service.payloads import CONTENT_TYPES, PayloadStream
from service.supervisor import BindError, listening_socket, uvicorn_config, worker_sockets

LIVE = SMALL_CONFIG["churn"]


def _check_every_worker(service: ServiceProcess, allocator: str) -> dict[int, dict]:
    stats = service.stats_from_every_worker(timeout=15)
    assert sorted(stats) == service.worker_pids()
    assert len(stats) == service.workers
    for worker in stats.values():
        assert worker["malloc_library"] == expected_library(allocator)
        assert worker["allocator_version"]
        assert worker["live_count"] == LIVE["live_buffers"]
    assert sorted(w["worker"] for w in stats.values()) == list(range(service.workers))
    return stats


# ---------------------------------------------------------------------------------------------
# The listening socket (in-process, fast)


def test_the_listening_socket_and_its_connections_have_tcp_nodelay() -> None:
    config = uvicorn_config(port=free_port(), workers=2)
    assert config.host == "127.0.0.1" and config.limit_max_requests is None
    sock = listening_socket(config)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        sock.listen()
        with socket.create_connection(sock.getsockname()):
            accepted, _ = sock.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()


def test_a_port_in_use_is_a_bind_error_that_says_so() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BindError, match=f"port {port} on 127.0.0.1 is already in use"):
            listening_socket(uvicorn_config(port=port, workers=1))


def test_every_worker_gets_its_own_socket_with_tcp_nodelay_and_reuseport() -> None:
    config = uvicorn_config(port=free_port(), workers=3)
    socks = worker_sockets(config, 3)
    try:
        assert len({s.fileno() for s in socks}) == 3
        assert {s.getsockname() for s in socks} == {("127.0.0.1", config.port)}
        for sock in socks:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        for sock in socks:
            sock.close()


def test_a_port_in_use_is_refused_even_though_workers_share_theirs() -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(BindError, match="already in use"):
            worker_sockets(uvicorn_config(port=port, workers=2), 2)


# ---------------------------------------------------------------------------------------------
# Real services


def test_new_connections_spread_over_every_worker(jemalloc_service: ServiceProcess) -> None:
    """With a socket per worker the kernel, not whoever is awake, picks the worker."""
    import http.client

    held, seen = [], []
    try:
        for _ in range(60):  # connections held open, so each one is hashed anew
            conn = http.client.HTTPConnection("127.0.0.1", jemalloc_service.port, timeout=10)
            conn.request("GET", "/health")
            seen.append(__import__("json").loads(conn.getresponse().read())["pid"])
            held.append(conn)
    finally:
        for conn in held:
            conn.close()
    counts = sorted(seen.count(pid) for pid in set(seen))
    assert len(counts) == jemalloc_service.workers
    assert counts[0] >= 5, counts  # 20 expected each; fewer than 5 is a 1-in-10^4 hash draw


@pytest.mark.parametrize("fixture", ["glibc_service", "jemalloc_service"])
def test_every_worker_runs_on_the_intended_allocator(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    service = request.getfixturevalue(fixture)
    _check_every_worker(service, fixture.removesuffix("_service"))
    assert service.pid in service.tree_pids()
    assert set(service.worker_pids()) < set(service.tree_pids())


def test_tcmalloc_workers_and_a_stop_that_leaves_no_process() -> None:
    service = start("tcmalloc", workers=2)
    try:
        _check_every_worker(service, "tcmalloc")
        pids = service.tree_pids()
        assert len(pids) >= 3  # supervisor, 2 workers (and multiprocessing's resource tracker)
    finally:
        began = time.monotonic()
        service.stop()
    assert time.monotonic() - began < 10.0  # stop(): 4 s of grace, then SIGKILL
    assert wait_gone(pids) == []
    assert service.poll() is not None


def test_the_live_set_stays_bounded_over_many_churns(jemalloc_service: ServiceProcess) -> None:
    before = sum(s["churn_calls"] for s in jemalloc_service.stats_from_every_worker(15).values())
    with httpx.Client(base_url=jemalloc_service.base_url, timeout=10) as client:
        for _ in range(300):
            answer = client.post("/churn").json()
            assert answer["live_count"] <= LIVE["live_buffers"]
            assert answer["allocated"] == LIVE["alloc_per_call"]
    stats = jemalloc_service.stats_from_every_worker(15)
    assert sum(s["churn_calls"] for s in stats.values()) == before + 300
    for worker in stats.values():
        assert worker["live_count"] <= LIVE["live_buffers"]
        count = worker["live_count"]
        assert LIVE["min_bytes"] * count <= worker["live_bytes"] <= LIVE["max_bytes"] * count
        assert worker["pss_anon_bytes"] > worker["live_bytes"]


def test_keep_alive_requests_are_not_delayed(jemalloc_service: ServiceProcess) -> None:
    body = PayloadStream(4).body("json")
    times = []
    with httpx.Client(base_url=jemalloc_service.base_url, timeout=10) as client:
        for _ in range(30):
            began = time.perf_counter()
            client.post("/json", content=body, headers={"content-type": "application/json"})
            times.append(time.perf_counter() - began)
    # A Nagle/delayed-ACK stall adds about 40 ms to every keep-alive request, the fastest
    # too; a busy machine slows some requests, not all (the median: benchmarks/service_latency.py).
    assert min(times) < 0.03, sorted(times)


_DEEP_JSON = b"[" * 300_000
_BIG = b" " * ((1 << 20) + 10)
_XXE = (
    b'<?xml version="1.0"?><!DOCTYPE order [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<order><notes>&x;</notes></order>"
)
_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
    + b"".join(b'<!ENTITY %c "%s">' % (98 + i, b"&%c;" % (97 + i) * 10) for i in range(8))
    + b"]><l>&i;</l>"
)
_QUADRATIC = (
    b'<?xml version="1.0"?><!DOCTYPE o [<!ENTITY a "'
    + b"A" * 40_000
    + b'">]><o>'
    + b"&a;" * 20_000
    + b"</o>"
)
_EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE order SYSTEM "file:///etc/passwd"><order/>'

HOSTILE = [
    ("/json", "application/json", b"{not json", 400),
    ("/json", "application/json", _DEEP_JSON, 400),
    ("/json", "application/json", b'{"items": NaN}', 422),
    ("/json", "application/json", b'{"order_id": []}', 422),
    ("/json", "text/plain", b"{}", 415),
    ("/json", "application/json", _BIG, 413),
    ("/xml", "application/xml", _XXE, 400),
    ("/xml", "application/xml", _LAUGHS, 400),
    ("/xml", "application/xml", _QUADRATIC, 400),
    ("/xml", "application/xml", _EXTERNAL_DTD, 400),
    ("/xml", "application/xml", b"<order><unclosed></order>", 400),
    ("/xml", "application/json", b"<order/>", 415),
    ("/churn", None, b"x" * 10_000, 413),
]


def test_hostile_requests_get_a_fast_json_4xx_and_no_worker_dies(
    glibc_service: ServiceProcess,
) -> None:
    workers = glibc_service.worker_pids()
    with httpx.Client(base_url=glibc_service.base_url, timeout=10) as client:
        for path, content_type, body, status in HOSTILE:
            headers = {"content-type": content_type} if content_type else {}
            began = time.perf_counter()
            response = client.post(path, content=body, headers=headers)
            assert time.perf_counter() - began < 5.0  # an expanding entity would take minutes
            assert response.status_code == status, (path, body[:60], response.text)
            assert list(response.json()) == ["error"]
            assert "root:" not in response.text
        streamed = client.post(
            "/json", content=iter([b" " * 65536] * 20), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert client.get("/health").status_code == 200
    assert glibc_service.worker_pids() == workers
    _check_every_worker(glibc_service, "glibc")


_HTTP_BODIES = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda n, s: s * n, st.integers(1, 5000), st.sampled_from([b"[", b'{"a":', b"<a>"])),
    st.sampled_from([PayloadStream(2).body("json"), PayloadStream(2).body("xml")]).flatmap(
        lambda body: st.integers(0, len(body)).map(lambda cut: body[:cut])
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["json", "xml"]), body=_HTTP_BODIES)
def test_fuzzed_bodies_over_http_never_get_a_5xx(
    glibc_service: ServiceProcess, kind: str, body: bytes
) -> None:
    with httpx.Client(base_url=glibc_service.base_url, timeout=10) as client:
        response = client.post(
            f"/{kind}", content=body, headers={"content-type": CONTENT_TYPES[kind]}
        )
    assert response.status_code < 500
    if response.status_code != 200:
        assert list(response.json()) == ["error"]


def test_a_port_in_use_is_a_one_line_launch_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(LaunchError) as caught:
            start("glibc", port=port)
    assert str(caught.value) == f"port {port} on 127.0.0.1 is already in use"


def test_an_interpreter_that_cannot_start_is_a_clear_error() -> None:
    began = time.monotonic()
    with pytest.raises(LaunchError, match="exited with code 1 before it was ready.*PYTHONMALLOC"):
        start("glibc", env={"PYTHONMALLOC": "no-such-allocator"})
    assert time.monotonic() - began < 10


def _sitecustomize(tmp_path: Path, worker_code: str) -> dict[str, str]:
    """Environment whose sitecustomize runs `worker_code` in uvicorn's workers only."""
    (tmp_path / "sitecustomize.py").write_text(
        f"import os, sys, time\nif '--multiprocessing-fork' in sys.argv:\n    {worker_code}\n"
    )
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}


def test_a_worker_that_fails_at_startup_is_a_clear_error(tmp_path: Path) -> None:
    env = _sitecustomize(tmp_path, f"os.environ[{CONFIG_ENV!r}] = '{{broken'")
    why = "a worker failed to start before it was ready: .*ConfigError: .* is not valid JSON"
    with pytest.raises(LaunchError, match=why):
        start("glibc", env=env)


def test_workers_that_keep_dying_are_a_clear_error(tmp_path: Path) -> None:
    env = _sitecustomize(tmp_path, "time.sleep(0.3); os._exit(1)")
    began = time.monotonic()
    with pytest.raises(LaunchError, match="workers keep dying"):
        start("glibc", env=env, ready_timeout=20)
    assert time.monotonic() - began < 15


def _no_core_dumps() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def test_a_worker_killed_by_a_signal_is_reported_with_its_signal_and_time(tmp_path: Path) -> None:
    log = tmp_path / "service.log"  # kept after the stop, to show the stop added no death
    service = start("glibc", workers=2, preexec=_no_core_dumps, log_path=log)
    try:
        assert service.worker_exits() == []
        victim, other = service.worker_pids()
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGSEGV)
        deadline = time.monotonic() + 5
        while not (exits := service.worker_exits()) and time.monotonic() < deadline:
            time.sleep(0.05)
        (gone,) = exits
        assert (gone.pid, gone.exitcode, gone.signal_name) == (victim, -signal.SIGSEGV, "SIGSEGV")
        assert gone.how() == "was killed by SIGSEGV" and not gone.hung
        assert killed_at <= gone.noticed <= killed_at + 1.5  # the supervisor looks every 0.5 s
        deadline = time.monotonic() + 20  # uvicorn replaces it, as before
        while len(service.worker_pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert other in service.worker_pids() and victim not in service.worker_pids()
    finally:
        service.stop()
    assert [g.pid for g in service.worker_exits()] == [victim]  # a stop is not a death


def test_a_worker_that_stops_answering_is_killed_and_reported_hung(tmp_path: Path) -> None:
    """A stopped worker fails uvicorn's health check (5 s) and is killed: hung, SIGKILL. A
    worker that dies of its own signal while the check waits is not hung (the test above)."""
    service = start("glibc", workers=2, preexec=_no_core_dumps, log_path=tmp_path / "log")
    try:
        victim, _ = service.worker_pids()
        os.kill(victim, signal.SIGSTOP)
        deadline = time.monotonic() + 20
        while not (exits := service.worker_exits()) and time.monotonic() < deadline:
            time.sleep(0.1)
        (gone,) = exits
        assert (gone.pid, gone.exitcode, gone.hung) == (victim, -signal.SIGKILL, True)
        assert gone.how() == "stopped answering the supervisor and was killed"
    finally:
        service.stop()


def test_the_child_joins_its_cgroup_and_cpus_before_exec(tmp_path: Path) -> None:
    procs = tmp_path / "cgroup.procs"  # a stand-in file: the launcher only writes the pid
    procs.write_text("")
    marker = tmp_path / "preexec-ran"
    marker_path = os.fsencode(marker)

    def extra() -> None:
        os.close(os.open(marker_path, os.O_WRONLY | os.O_CREAT))

    cpu = min(os.sched_getaffinity(0))
    config = dict(SMALL_CONFIG, python_malloc="malloc")
    service = start(
        "jemalloc", service_config=config, cgroup_procs=procs, cpus={cpu}, preexec=extra
    )
    try:
        assert procs.read_text() == str(service.pid)
        assert marker.exists()
        for pid in service.tree_pids():
            assert os.sched_getaffinity(pid) == {cpu}
        for worker in _check_every_worker(service, "jemalloc").values():
            assert worker["pythonmalloc"] == "malloc"
    finally:
        service.stop()


def test_stats_from_every_worker_reports_a_missing_worker(jemalloc_service: ServiceProcess) -> None:
    lonely = ServiceProcess(
        jemalloc_service.process, jemalloc_service.port, 5, jemalloc_service.log_path
    )
    with pytest.raises(LaunchError, match="did not answer /stats within 1 s"):
        lonely.stats_from_every_worker(timeout=1)


def test_bad_arguments_are_launch_errors_before_anything_starts() -> None:
    with pytest.raises(LaunchError, match="bad service config: churn.initial_buffers"):
        start("glibc", service_config={"churn": {"live_buffers": 5, "initial_buffers": 9}})
    with pytest.raises(LaunchError, match="port"):
        start("glibc", port=70000)


def test_a_script_posing_as_python_is_refused(tmp_path: Path) -> None:
    shim = tmp_path / "python3"
    shim.write_text('#!/usr/bin/env bash\nexec python3 "$@"\n')
    shim.chmod(0o755)
    kwargs = dict(workers=1, port=free_port(), env={}, service_config=SMALL_CONFIG)
    with pytest.raises(LaunchError, match="is a script, not an interpreter"):
        start_service(python=str(shim), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(LaunchError, match="cannot run"):
        start_service(python=str(tmp_path / "missing"), **kwargs)  # type: ignore[arg-type]
