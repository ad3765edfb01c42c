"""The allocator's own statistics, read inside this process (/stats `internal`).

The anonymous memory the harness samples says how much the process holds, not why: live
objects, free memory the allocator keeps, or pages waiting for a purge timer. Each family
answers from its own counters (`internal_stats` of service.allocators.glibc, .jemalloc,
.tcmalloc, .mimalloc, and .python for pymalloc above it): bytes per field, where each came
from, and why a field is absent. Every read is a few library calls, cheap enough for each
/stats (benchmarks/internal_stats.py measures it per allocator).
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

from service.allocators import python
from service.allocators.heap import malloc_counter
from service.allocators.serving import family_of, malloc_library

__all__ = ["internal_record", "retention_reading"]


@cache
def _serving() -> tuple[ctypes.CDLL, Any]:
    """The library serving malloc here and its family module: found once per process."""
    lib = ctypes.CDLL(malloc_library())
    return lib, family_of(lib)


def internal_record() -> dict[str, Any]:
    """`{"malloc": <the serving family's statistics>, "python": <pymalloc's>}`, each a
    record of service.allocators.readings.InternalStats."""
    lib, family = _serving()
    try:
        malloc = family.internal_stats(lib).record()
    except (OSError, AttributeError, ValueError) as exc:
        malloc = {"family": family.NAME, "bytes": {}, "counts": {}, "source": {},
                  "absent": {"all": f"reading failed: {exc}"}}  # fmt: skip
    return {"malloc": malloc, "python": python.internal_stats().record()}


def retention_reading() -> dict[str, Any]:
    """What the retention log (service.retentionlog) records every few seconds: the internal
    record, the heap count (mimalloc's only live figure, a walk of its blocks: too slow for
    every /stats, fine every few seconds) and pymalloc's arena bytes."""
    record = internal_record()
    counter = malloc_counter()
    in_use = counter.read() if counter is not None else None
    record["heap"] = (
        {"bytes": in_use, "source": counter.source}
        if counter is not None and in_use is not None
        else {"bytes": None, "source": "this allocator offers no count of bytes in use"}
    )
    arenas, how = python.arena_bytes()
    record["python"].setdefault("bytes", {})
    record["python"].setdefault("source", {})
    if arenas is not None:
        record["python"]["bytes"]["arenas"] = arenas
        record["python"]["source"]["arenas"] = how
        record["python"].get("absent", {}).pop("arenas", None)
    else:
        record["python"].setdefault("absent", {})["arenas"] = how
    return record
