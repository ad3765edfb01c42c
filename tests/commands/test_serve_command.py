"""`allocstudy serve` end to end: a line per worker, a clean stop on a signal, one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_support import expected_library, free_port, library_or_skip, running, wait_gone

SPEC = """\
name: serve-test
title: serve test
allocators:
  - glibc
  - jemalloc
  - name: broken
    library: {broken}
service:
  workers: 2
  churn:
    live_buffers: 100
    max_bytes: 8192
    alloc_per_call: 10
    short_lifetime_s: 0.05
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    broken = tmp_path / "libbroken.so"  # not an ELF file: ld.so ignores the preload
    broken.write_bytes(b"this is not a shared library\n" * 10)
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC.format(broken=broken))
    return path


def _serve(spec: Path, allocator: str, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench",
            "serve",
            str(spec),
            "--allocator",
            allocator,
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _supervisors(port: int) -> list[int]:
    """Running service supervisors started for `port` (by their command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"service.supervisor" in cmdline and str(port).encode() in cmdline:
            if running(int(entry)):
                found.append(int(entry))
    return found


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)]
)  # one handler for both
def test_serve_prints_every_worker_and_stops_cleanly_on_a_signal(
    spec: Path, stop_signal: signal.Signals
) -> None:
    library_or_skip("jemalloc")
    port = free_port()
    serve = _serve(spec, "jemalloc", port)
    try:
        assert serve.stdout is not None
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = serve.stdout.readline()
            assert line, f"serve ended early: {serve.wait()} {serve.stderr.read()}"  # type: ignore[union-attr]
            lines.append(line.strip())
            if line.startswith("serving "):
                break
        workers = [re.match(r"worker (\d+): malloc from (\S+) \((.+)\)$", ln) for ln in lines[:-1]]
        assert len(workers) == 2 and all(workers)
        assert {m.group(2) for m in workers if m} == {expected_library("jemalloc")}
        assert lines[-1].startswith(f"serving jemalloc on http://127.0.0.1:{port} with 2 workers")
        pids = [int(m.group(1)) for m in workers if m] + _supervisors(port)
        assert len(pids) == 3
    finally:
        serve.send_signal(stop_signal)
        began = time.monotonic()
        code = serve.wait(timeout=10)
    assert time.monotonic() - began < 10.0  # the service's stop: 4 s of grace, then SIGKILL
    assert code == 0, serve.stderr.read()  # type: ignore[union-attr]
    assert wait_gone(pids) == []


def test_serve_refuses_workers_that_are_not_on_the_allocator(spec: Path) -> None:
    port = free_port()
    serve = _serve(spec, "broken", port)
    out, err = serve.communicate(timeout=60)
    assert serve.returncode == 3
    assert len(err.strip().splitlines()) == 1, err
    assert re.match(
        r"allocstudy serve: 2 of 2 workers are not on broken: worker \d+ gets malloc "
        r"from \S+libc\.so\.6, expected \S+libbroken\.so \(.*cannot be preloaded.*\)$",
        err.strip(),
    ), err
    assert "Traceback" not in err
    assert wait_gone(_supervisors(port)) == []


def test_serve_on_a_port_in_use_is_one_line(spec: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        serve = _serve(spec, "glibc", port)
        out, err = serve.communicate(timeout=60)
    assert serve.returncode == 3
    assert err.strip() == f"allocstudy serve: port {port} on 127.0.0.1 is already in use"
    assert out == ""


def test_serve_with_an_unknown_allocator_is_a_usage_error(spec: Path) -> None:
    serve = _serve(spec, "no-such-malloc", free_port())
    out, err = serve.communicate(timeout=60)
    assert serve.returncode == 2
    assert err.startswith("allocstudy serve: unknown allocator 'no-such-malloc'")
