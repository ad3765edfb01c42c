"""The lines the service's processes write for the launcher to read back, and where.

The supervisor and every worker write their events (a worker ready, retired, recycled or
dead) as one prefixed line each into the log the launcher reads; a worker that moved its own
output into a worker log keeps a copy of the supervisor's stderr for them. Shared by
service.supervisor and service.workerprocess, so neither imports the other for it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["MESSAGE_PREFIX", "report_line", "set_report_fd", "worker_log_name"]

#: Lines this process writes for the launcher to quote start with this.
MESSAGE_PREFIX = "allocstudy-service:"

# Where report_line writes: stderr, unless a worker moved its stderr to a log of its own.
_report_fd: int | None = None


def set_report_fd(fd: int) -> None:
    """Send this process's report lines to `fd` (a worker's copy of the supervisor's stderr,
    kept before its own output went to its worker log)."""
    global _report_fd
    _report_fd = fd


def worker_log_name(slot: int, generation: int) -> str:
    """The file name of a worker's own log in the worker log directory."""
    return f"worker-{slot}-{generation}.log"


def report_line(text: str) -> None:
    """One line of the log for the launcher to read back, in one write.

    The supervisor and every worker share the log, and under PYTHONUNBUFFERED print() writes
    a line and its newline in two calls: two processes writing at once could splice their
    lines into one that neither parser reads. One write of a whole short line to a file opened
    for appending lands whole.
    """
    fd = sys.stderr.fileno() if _report_fd is None else _report_fd
    os.write(fd, f"{MESSAGE_PREFIX} {text}\n".encode())
