"""Helpers of the load generator tests: loopback stand-in servers, configs, runs, rows."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.load.config import LoadConfig
from bench.load.handle import start_loadgen, wait_loadgen
from bench.load.record import LoadSummary
from bench.results.tables import read_table
from service.config import HOSTED_HEALTH_PATH
from service.launcher import free_port as free_port  # the one helper, re-exported

SERVER = Path(__file__).with_name("loadgen_server.py")


@contextmanager
def loopback_server(delay: float = 0.0) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """A stand-in service on 127.0.0.1 answering after `delay` s: (base URL, its process)."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--delay", str(delay)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"test server did not start (printed {port!r})")
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.kill()
        proc.wait(timeout=10)


def load_config(base_url: str, rate: float, duration_s: float, **extra: Any) -> LoadConfig:
    """A one-stage config with the study's mix and minimal bodies (the stand-in ignores them)."""
    return LoadConfig.model_validate(
        {
            "base_url": base_url,
            "stages": [{"phase": "load", "rate": rate, "duration_s": duration_s}],
            "mix": {"churn": 2, "json": 1, "xml": 1},
            "payload": {"kind": "minimal"},
            "origin": time.monotonic(),
            **extra,
        }
    )


def run_loadgen(config: LoadConfig, out: Path) -> tuple[LoadSummary, list[dict[str, Any]]]:
    """Run the generator process to the end: its summary and its rows."""
    summary = wait_loadgen(start_loadgen(config, out), timeout=60)
    return summary, rows_of(out)


def rows_of(path: Path) -> list[dict[str, Any]]:
    table: pa.Table = read_table(path, "requests")
    return table.to_pylist()


def send_to_log_server(
    script: Path, tmp_path: Path, mix: Any, log: Path, *, stages: list[dict[str, Any]], **extra: Any
) -> tuple[Any, list[dict[str, Any]], int]:
    """Send a request file's mix to a request-logging loopback server `script` (which writes
    every request it gets to `log`, and prints its port first): the generator's summary and
    rows, and the server's pid."""
    server = subprocess.Popen(
        [sys.executable, str(script), str(log)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = server.stdout.readline().strip()
        config = LoadConfig.model_validate(
            {
                "base_url": f"http://127.0.0.1:{port}",
                "stages": stages,
                "mix": mix.weights,
                "requests": [r.model_dump(mode="json") for r in mix.requests],
                "health_path": HOSTED_HEALTH_PATH,
                "origin": time.monotonic(),
                **extra,
            }
        )
        summary, rows = run_loadgen(config, tmp_path / "requests.arrow")
        return summary, rows, server.pid
    finally:
        server.kill()
        server.wait(timeout=10)
