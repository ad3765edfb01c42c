"""What every worker does first, the synthetic app's and a hosted app's alike.

A worker ties its life to the supervisor's, claims its slot, and proves which allocator serves
it (the library, the allocator's own version, the settings a variant asked for, read back), and
finds the allocator's count of bytes in use (service.allocators.heap).
Both apps call `start_worker` from their lifespan startup, never from the app factory: an error
in the lifespan startup makes uvicorn stop with its startup-failure code, where an error in the
factory would make the supervisor restart the worker forever. Kept apart from service.app so a
hosted worker does not import FastAPI for it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Any

from service.allocators.heap import malloc_counter
from service.allocators.knobs import read_knobs, requests_from_env
from service.allocators.serving import allocator_version, malloc_library
from service.process.childenv import die_with_parent
from service.workerslot import WorkerSlot, claim_worker_slot

__all__ = ["WorkerIdentity", "die_with_supervisor", "start_worker"]


@dataclass
class WorkerIdentity:
    """Who a worker is and what serves its malloc, as its stats report it."""

    slot: WorkerSlot
    malloc_library: str
    allocator_version: str | None
    #: The read-back of the settings ALLOCSTUDY_KNOBS asked for (None: not a variant).
    knobs: dict[str, Any] | None

    @property
    def index(self) -> int:
        return self.slot.index

    def release(self) -> None:
        self.slot.release()


def die_with_supervisor() -> None:
    """End this worker (SIGTERM: uvicorn's graceful stop) when its supervisor dies, and at
    once if it already has: the supervisor itself dies with the runner (service.process.childenv),
    so no worker outlives a killed study."""
    parent = os.getppid()
    die_with_parent(signal.SIGTERM)
    if os.getppid() != parent or parent == 1:
        os.kill(os.getpid(), signal.SIGTERM)


def start_worker(*, supervised: bool) -> WorkerIdentity:
    """The start-up duties of a worker; `supervised` is False for an app run in-process by a
    test (no supervisor to die with)."""
    if supervised:
        die_with_supervisor()
    slot = claim_worker_slot()
    library = malloc_library()
    # The allocator's byte counter is found (and mimalloc's checked against a known
    # allocation) now, while nothing else in the worker allocates: a WSGI app's threads
    # allocating during the check would fail it for the life of the worker.
    malloc_counter()
    requests = requests_from_env()
    return WorkerIdentity(
        slot=slot,
        malloc_library=library,
        allocator_version=allocator_version(library),
        knobs=read_knobs(requests) if requests else None,  # a variant: its settings, read back
    )
