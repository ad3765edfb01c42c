"""A small, stable index for each worker of one supervisor: 0, 1, ... N-1.

uvicorn starts identical workers and tells none of them its rank, yet each worker's churn stream
should depend on the seed and a rank, not on a pid that changes from run to run. A worker claims
the lowest free index by binding an abstract-namespace Unix socket named after its supervisor's
pid and the index. The kernel releases the name when the worker dies, so a replacement worker
takes over the free index; there is no file to clean up.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

__all__ = ["MAX_SLOTS", "WorkerSlot", "claim_worker_slot"]

#: More workers than this fall back to their pid as the index.
MAX_SLOTS = 256


@dataclass
class WorkerSlot:
    """A claimed index; holds the claim until `release()` or the process ends."""

    index: int
    _sock: socket.socket | None

    def release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def claim_worker_slot(group: int | None = None) -> WorkerSlot:
    """Claim the lowest free index among the workers of `group` (default: the parent's pid)."""
    group = os.getppid() if group is None else group
    for index in range(MAX_SLOTS):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(f"\0allocstudy-worker-{group}-{index}")
        except OSError:
            sock.close()
            continue
        sock.set_inheritable(False)
        return WorkerSlot(index, sock)
    return WorkerSlot(os.getpid(), None)
