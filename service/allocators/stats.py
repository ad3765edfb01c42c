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
from service.allocators.serving import family_of, malloc_library

__all__ = ["internal_record"]


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
