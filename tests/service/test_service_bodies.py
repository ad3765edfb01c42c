"""service.bodies: what a client may send, in-process and against the real uvicorn service.

The real-service tests speak raw HTTP where httpx would refuse to send the request (a bad
Content-Length, a body dripped a byte a second); each checks that the workers that answered
are the ones that were there before (uvicorn restarts a worker that dies).
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from service_support import SMALL_CONFIG, start

from service.bodies import BODY_TIMEOUT_S as DEFAULT_BODY_TIMEOUT_S
from service.bodies import DOCUMENT_BODY_LIMIT, RequestRejected, read_bounded
from service.config import ConfigError, ServiceConfig
from service.launcher import ServiceProcess
from service.payloads import PayloadStream

#: The body deadline of the service these tests start (the default is 10 s).
BODY_TIMEOUT_S = 2.0
MIB = 1 << 20


async def _drip(chunks: int, every_s: float) -> AsyncIterator[bytes]:
    for _ in range(chunks):
        await asyncio.sleep(every_s)
        yield b"x"


def test_a_body_that_does_not_arrive_in_time_is_a_408_that_closes() -> None:
    began = time.monotonic()
    with pytest.raises(RequestRejected) as caught:
        asyncio.run(read_bounded(_drip(100, 0.05), "100", 4096, timeout_s=0.3))
    assert caught.value.status == 408 and caught.value.close
    assert "0.3 s" in caught.value.message
    assert time.monotonic() - began < 3.0  # 0.3 s, with room for a loaded machine


def test_a_body_in_time_is_read_whole() -> None:
    body = asyncio.run(read_bounded(_drip(5, 0.001), "5", 4096, timeout_s=5))
    assert body == b"xxxxx"


@pytest.mark.parametrize(("header", "status"), [("-1", 400), ("ten", 400), ("4097", 413)])
def test_a_bad_or_large_content_length_is_refused_before_reading(header: str, status: int) -> None:
    with pytest.raises(RequestRejected) as caught:
        asyncio.run(read_bounded(_drip(1, 0), header, 4096))
    assert caught.value.status == status and not caught.value.close


def test_the_body_deadline_is_the_service_configs_own_key() -> None:
    assert ServiceConfig().body_timeout_s == DEFAULT_BODY_TIMEOUT_S
    assert ServiceConfig.from_dict({"body_timeout_s": 2}).body_timeout_s == 2.0
    for bad in (0, -1, "5", True, 1e9):
        with pytest.raises(ConfigError, match="body_timeout_s"):
            ServiceConfig.from_dict({"body_timeout_s": bad})


# ---------------------------------------------------------------------------------------------
# Against the real service


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    """Two glibc workers with a short body deadline."""
    config = dict(SMALL_CONFIG, workers=2, body_timeout_s=BODY_TIMEOUT_S)
    with start("glibc", workers=2, service_config=config) as running:
        yield running


def _connect(service: ServiceProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=10)


def _head(path: str, length: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n".encode()
        + b"Content-Length: "
        + length
        + b"\r\n\r\n"
    )


def _read_until_closed(conn: socket.socket, limit_s: float) -> bytes:
    """What the server sends until it closes the connection; fails if it is still open after
    limit_s seconds."""
    received = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([conn], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise AssertionError(f"the connection is still open after {limit_s} s: {received[:200]!r}")


@pytest.mark.parametrize("length", [b"ten", b"-5", b"1e3", b"12, 13"])
def test_a_malformed_content_length_is_a_400_and_the_connection_closes(
    service: ServiceProcess, length: bytes
) -> None:
    workers = service.worker_pids()
    with _connect(service) as conn:
        conn.sendall(_head("/json", length) + b"{}")
        answer = _read_until_closed(conn, 10)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert service.worker_pids() == workers


def _health_answers(service: ServiceProcess, times: int) -> list[float]:
    """Seconds each of `times` GET /health on fresh connections took (any worker may answer)."""
    took = []
    for _ in range(times):
        began = time.monotonic()
        response = httpx.get(f"{service.base_url}/health", timeout=10)
        assert response.status_code == 200
        took.append(time.monotonic() - began)
    return took


@pytest.mark.parametrize("sender", ["drip", "stall"])
def test_a_slow_body_is_cut_off_with_a_408_and_the_workers_serve_meanwhile(
    service: ServiceProcess, sender: str
) -> None:
    """`drip` sends a byte a second, `stall` declares 1000 bytes, sends 2 and waits: uvicorn
    has no body timeout, so without the app's deadline both would hold the request for ever."""
    workers = service.worker_pids()
    stop = threading.Event()
    with _connect(service) as conn:
        began = time.monotonic()
        conn.sendall(_head("/json", b"1000") + b"{ ")

        def drip() -> None:
            while sender == "drip" and not stop.wait(1.0):
                try:
                    conn.sendall(b" ")
                except OSError:  # the server closed the connection: the point of the test
                    return

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        try:
            served = _health_answers(service, 6)  # while the body is still coming
            answer = _read_until_closed(conn, BODY_TIMEOUT_S + 10)
            ended = time.monotonic() - began
        finally:
            stop.set()
            dripper.join(5)
    assert max(served) < 5.0, served  # the worker reading the slow body serves others
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"connection: close" in answer.lower()
    assert b'"error":"the body did not arrive within 2 s"' in answer
    assert BODY_TIMEOUT_S - 0.5 < ended < BODY_TIMEOUT_S + 10
    assert service.worker_pids() == workers


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak since the last reset) of a process, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (proc(5))


Body = bytes | AsyncIterator[bytes]


async def _post_all(service: ServiceProcess, bodies: list[Body]) -> list[httpx.Response]:
    """Every body to /json at once, each on its own connection (so the kernel spreads them);
    bytes go with their Content-Length, a stream chunked, without one."""
    limits = httpx.Limits(max_connections=len(bodies), max_keepalive_connections=0)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(base_url=service.base_url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(client.post("/json", content=body, headers=headers) for body in bodies)
        )


async def _stream(total: int, chunk: bytes) -> AsyncIterator[bytes]:
    for _ in range(total // len(chunk)):
        yield chunk


def test_32_concurrent_bodies_at_the_limit_keep_every_worker_bounded(
    service: ServiceProcess,
) -> None:
    """16 documents just under the 1 MiB limit, 8 declared over it, and 8 streamed without a
    length to 32 MiB each (256 MiB in all), at once: the first get answers, the others 413s,
    and no worker's peak memory grows by more than the 32 bodies at the limit could take
    (a worker that buffered a streamed body whole would pass that on its own)."""
    workers = service.worker_pids()
    document = PayloadStream(5).body("json")
    near = document + b" " * (DOCUMENT_BODY_LIMIT - 1 - len(document))
    over = b" " * (DOCUMENT_BODY_LIMIT + 1)
    bodies: list[Body] = [near] * 16 + [over] * 8
    bodies += [_stream(32 * MIB, b" " * 65536) for _ in range(8)]
    before = {pid: _status(pid)["VmRSS"] for pid in workers}
    for pid in workers:
        _reset_peak(pid)
    began = time.monotonic()
    responses = asyncio.run(_post_all(service, bodies))
    took = time.monotonic() - began
    growth = {pid: _status(pid)["VmHWM"] - before[pid] for pid in workers}
    assert [r.status_code for r in responses] == [200] * 16 + [413] * 16, [
        r.text[:100] for r in responses
    ]
    assert all(list(r.json()) == ["error"] for r in responses[16:])
    bound = 32 * DOCUMENT_BODY_LIMIT + 32 * MIB
    assert all(g < bound for g in growth.values()), {p: g / MIB for p, g in growth.items()}
    assert took < 120
    assert service.worker_pids() == workers
    assert httpx.get(f"{service.base_url}/health", timeout=10).status_code == 200
