"""The retention log's cost to a request: latency with the log on (read often) and off.

A worker reads its allocator's statistics on its own event loop (service.retentionlog), so a
request that arrives during a reading waits for it. This runs the real service (one worker,
each allocator preloaded, as `allocstudy serve` does) twice per allocator, one after the
other in one run: with the log off, and with it reading every --every-s seconds (default
0.02 s: a hundred times the study's 2 s, so that many requests land on a reading), and sends
--requests sequential POST /churn requests on one keep-alive connection, reporting the
median, p99 and p99.9 of each and the ratio of the p99s.

    .venv/bin/python benchmarks/retention_latency.py [--requests 3000] [--every-s 0.02]
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
ALLOCATORS = ("glibc", "jemalloc", "tcmalloc", "mimalloc-v2", "mimalloc-v3")


def _spec(folder: Path) -> Path:
    """The quick spec's service with one worker (so every request meets the one log)."""
    data = yaml.safe_load((ROOT / "specs/quick.yaml").read_text())
    data["name"] = "retention-latency"
    workers = data["service"].get("workers", 4)
    data["service"]["workers"] = 1
    data["service"]["rate"] = data["service"]["rate"] / workers  # one worker's share
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _wait_ready(port: int, deadline: float) -> None:
    """Until /health answers (RuntimeError after the deadline)."""
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the service did not become ready")


def _latencies(port: int, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    spans = []
    for _ in range(count):
        start = time.perf_counter()
        conn.request("POST", "/churn", body=b"")
        conn.getresponse().read()
        spans.append((time.perf_counter() - start) * 1000)
    return sorted(spans)


def _measure(spec: Path, allocator: str, every_s: float, count: int, port: int) -> list[float]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as logs:
        if every_s > 0:
            env.update(ALLOCSTUDY_RETENTION_LOG=logs, ALLOCSTUDY_RETENTION_EVERY_S=str(every_s))
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/allocstudy"), "serve", "--allocator", allocator,
             "--port", str(port), str(spec)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            try:
                _wait_ready(port, time.monotonic() + 60)
            except RuntimeError:
                proc.kill()
                raise RuntimeError(f"{allocator}: {proc.communicate()[1][-2000:]}") from None
            _latencies(port, 200)  # warm the connection and the live set
            return _latencies(port, count)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def _pct(spans: list[float], q: float) -> float:
    return spans[min(len(spans) - 1, int(q * len(spans)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--every-s", type=float, default=0.02)
    parser.add_argument("--port", type=int, default=8391)
    args = parser.parse_args()
    if Path("/tmp/allocstudy-QUIET").exists():
        print("the machine is being measured (/tmp/allocstudy-QUIET): not now", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        spec = _spec(Path(folder))
        print(f"{'allocator':12} {'log':>8} {'median ms':>10} {'p99 ms':>8} {'p99.9 ms':>9}")
        for allocator in ALLOCATORS:
            p99 = {}
            for every in (0.0, args.every_s):
                spans = _measure(spec, allocator, every, args.requests, args.port)
                p99[every] = _pct(spans, 0.99)
                label = f"{every:g} s" if every else "off"
                print(
                    f"{allocator:12} {label:>8} {statistics.median(spans):>10.3f} "
                    f"{p99[every]:>8.3f} {_pct(spans, 0.999):>9.3f}"
                )
            print(f"{'':12} p99 with the log / without: {p99[args.every_s] / p99[0.0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
