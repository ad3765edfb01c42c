"""The Dask task of one cell, as it runs inside a benchmark host's worker.

It starts the cell in a fresh process (bench.cluster.cellproc), in a session of its own, and
waits for it, forwarding each line the cell prints to the client (a Dask event on the run's
topic, so the terminal shows what every host is doing) and watching the run's stop event:
when the client is interrupted it sets the event, and the task sends SIGTERM to its cell,
which unwinds through its clean-ups (service, cgroups, THP) as a local run does on Ctrl-C.
That SIGTERM is the only signal it gets: in a session of its own, a Ctrl-C typed where the
worker (or a local cluster's client) runs does not reach it as well, which would interrupt
its clean-up half-way. A worker that dies takes its cell down the same way (the kernel's
parent-death signal, SIGTERM); the cell writes its output to a file this task follows, never
to a pipe, which would break with the worker and fail the cell's clean-up at its next line.
A cell process that ends without a payload becomes a failed cell whose reason is the last
line it printed.

Which allocators this host has verified in this run is remembered here, in the worker, which
lives for the whole run: the first cell of an allocator on a host verifies it there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from bench.cluster.cellproc import read_payload
from bench.cluster.hosts import fingerprint
from bench.cluster.wire import encode
from bench.experiments.cell import Cell, CellResult, host_name
from service.process.childenv import die_with_parent

__all__ = ["STOP_POLL_S", "run_cell_task"]

#: How often a running cell looks at the run's stop event (a Ctrl-C reaches it this late).
STOP_POLL_S = 0.5
#: Lines of a cell's output kept for the reason of a cell process that died.
TAIL_LINES = 20

_verified: set[tuple[str, str]] = set()  # (run id, allocator) verified on this host
_lock = threading.Lock()


def _this_worker() -> Any:
    """The Dask worker running this task (None outside one). Asked in the task's own thread:
    Dask knows its worker per executing thread, not in a thread the task starts."""
    try:
        from distributed import get_worker

        return get_worker()
    except Exception:
        return None


def _forward(worker: Any, topic: str | None, key: str, line: str) -> None:
    """One line of a cell's output to the client, through the scheduler (best effort)."""
    if worker is None or not topic:
        return
    try:
        worker.log_event(topic, {"cell": key, "host": host_name(), "line": line})
    except Exception as exc:  # a closing scheduler: the line stays in this worker's log
        print(
            f"allocstudy: {key}: a line not forwarded to the client "
            f"({type(exc).__name__}: {exc}): {line}",
            file=sys.stderr,
            flush=True,
        )


def _stop_requested(name: str | None) -> bool:
    if not name:
        return False
    try:
        from distributed import Event

        return bool(Event(name).is_set())
    except Exception:  # no scheduler to ask (it is going away, and the worker with it)
        return False


def _died(cell: Cell, started: float, code: int, tail: deque[str]) -> dict[str, Any]:
    last = next((line for line in reversed(tail) if line.strip()), f"exit code {code}")
    result = CellResult(
        cell=cell, status="failed", host=host_name(), started=started, finished=time.time(),
        reason=f"the cell's process on {host_name()} ended without a result: {last.strip()}",
    )  # fmt: skip
    return encode(result, fingerprint=fingerprint(), confounds={}, log=list(tail))


def run_cell_task(request: dict[str, Any]) -> dict[str, Any]:
    """Run one cell on this host; its payload (bench.cluster.wire), whatever happened.

    `request` holds the spec (as JSON) and its hash, the cell, the run id, whether to wait
    for this host's run lock, the run's event topic and stop event names.
    """
    cell = Cell.from_record(request["cell"])
    worker = _this_worker()
    address = str(worker.address) if worker is not None else None  # for a retry elsewhere
    mine = (str(request["run_id"]), cell.allocator)
    with _lock:
        verify = mine not in _verified
    started = time.time()
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    with tempfile.TemporaryDirectory(prefix=f"allocstudy-cell-{os.getpid()}-") as tmp:
        folder = Path(tmp)
        (folder / "request.json").write_text(json.dumps({**request, "verify": verify}))
        log = folder / "cell.log"
        with log.open("wb") as sink:  # a file, not a pipe: the cell outlives a dying worker
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.cluster.cellproc", str(folder / "request.json"),
                 str(folder / "out")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink,
                start_new_session=True, preexec_fn=lambda: die_with_parent(signal.SIGTERM),
            )  # fmt: skip

        def read() -> None:
            """Follow the cell's output file until the cell has ended and it is read."""
            with log.open("r", encoding="utf-8", errors="replace") as source:
                pending = ""
                while True:
                    ended = proc.poll() is not None
                    chunk = source.read()
                    pending += chunk
                    *lines, pending = pending.split("\n")
                    for line in lines:
                        tail.append(line)
                        _forward(worker, request.get("topic"), cell.key, line)
                    if ended and not chunk:
                        break
                    if not chunk:
                        time.sleep(0.2)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        stopping = False
        try:
            while proc.poll() is None:
                if not stopping and _stop_requested(request.get("stop_event")):
                    stopping = True
                    proc.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=STOP_POLL_S)
        finally:
            if proc.poll() is None:  # the task itself is being torn down
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        reader.join(timeout=5)
        payload = read_payload(folder / "out")
    if payload is None:
        return {**_died(cell, started, proc.returncode, tail), "worker": address}
    meta = json.loads(payload["meta"])
    if meta.get("status") == "ok":
        with _lock:
            _verified.add(mine)
    return {**payload, "worker": address}
