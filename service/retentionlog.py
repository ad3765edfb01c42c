"""Each worker writes down, every few seconds, where its memory sits (for retention.arrow).

The harness wants the allocator's statistics and the kernel's view of a worker at one instant,
every few seconds from ready to the end of idle. Asking over HTTP would cost a request per
worker per reading (on fresh connections until every worker has answered) and would land
inside the idle being measured; so the worker writes them itself: when
ALLOCSTUDY_RETENTION_LOG names a folder, a task on the worker's event loop (the thread that
serves every request, so the allocator sees no new thread) reads both every
ALLOCSTUDY_RETENTION_EVERY_S seconds (default 2) and appends one JSON line to
`<folder>/retention-<pid>.jsonl`:
`{"t": CLOCK_MONOTONIC seconds, "pid", "internal": <the family's statistics>, "kernel":
{"Rss_Anon"} (bytes; every ROLLUP_EVERY-th reading, the first included, adds smaps_rollup's
"Pss_Anon", "LazyFree" and "AnonHugePages"), "read_us": what the reading took, the time a
request arriving meanwhile waited}`. CLOCK_MONOTONIC is one clock
for every process on the machine, so the harness places each line in its phases exactly.

Each line is written with one `os.write` on an O_APPEND descriptor opened at start-up: a worker
killed mid-run leaves whole lines behind, and the harness skips a torn last one. A reading
without smaps_rollup costs the worker well under a millisecond (benchmarks/internal_stats.py;
benchmarks/retention_latency.py measures what it adds to a request's latency).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from service.process.memory import kernel_view

__all__ = ["ENV_DIR", "ENV_EVERY", "read_lines", "start_retention_log"]

ENV_DIR = "ALLOCSTUDY_RETENTION_LOG"
ENV_EVERY = "ALLOCSTUDY_RETENTION_EVERY_S"

#: Every this many readings the kernel view includes smaps_rollup (LazyFree, Pss_Anon,
#: AnonHugePages): it walks the page tables, a few milliseconds a reading in a loaded worker,
#: where the rest of a reading takes well under one.
ROLLUP_EVERY = 5


def _line(read_internal: Callable[[], dict[str, Any]], *, rollup: bool = True) -> bytes:
    t = time.monotonic()
    record = {
        "t": round(t, 4),
        "pid": os.getpid(),
        "internal": read_internal(),
        "kernel": kernel_view(rollup=rollup),
    }
    record["read_us"] = round((time.monotonic() - t) * 1e6)
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


async def _every(fd: int, every_s: float, read_internal: Callable[[], dict[str, Any]]) -> None:
    try:
        for tick in itertools.count():
            os.write(fd, _line(read_internal, rollup=tick % ROLLUP_EVERY == 0))
            await asyncio.sleep(every_s)
    finally:
        os.close(fd)


def start_retention_log(read_internal: Callable[[], dict[str, Any]]) -> asyncio.Task[None] | None:
    """Start the worker's retention log on the running event loop when the harness asked for
    one (ALLOCSTUDY_RETENTION_LOG); None when it did not. The first line is written now."""
    folder = os.environ.get(ENV_DIR)
    if not folder:
        return None
    every_s = float(os.environ.get(ENV_EVERY) or 2.0)
    if every_s <= 0:
        raise ValueError(f"{ENV_EVERY} must be a positive number of seconds, not {every_s!r}")
    path = os.path.join(folder, f"retention-{os.getpid()}.jsonl")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    return asyncio.get_running_loop().create_task(_every(fd, every_s, read_internal))


def read_lines(path: str) -> list[dict[str, Any]]:
    """The whole lines of one worker's log (a torn last line, from a killed worker, is
    skipped)."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    return out
