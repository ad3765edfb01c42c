"""The allocator calls an idle probe makes, so purging that waits on activity gets its turn.

Some allocators return freed memory only when the program calls them: jemalloc 5.3 without its
background thread advances its decay on one call in about 1,000 of those that get past its
thread cache (`ARENA_DECAY_NTICKS_PER_UPDATE`, a per-call coin flip in
`arena_decay_ticks`, jemalloc's include/jemalloc/internal/arena_inlines_b.h), and mimalloc
checks its purge delays on allocation and free. A health probe's own small allocations stay
in those caches, so an idle of bare probes leaves such memory to chance: in this project's
runs jemalloc gave back 0%, 18% and 31% of its peak in three repeats of the same idle.

A spec's `service.idle_probe` asks each probe for `blocks` calls of malloc of `block_bytes`,
each freed at once (one block live at a time, never touched, so the probe's own memory stays
one block), through the C allocator the process runs on: past every thread cache when the
blocks are large (jemalloc caches blocks up to 32 KiB by default). It is the least of what a
trickle of real traffic would do, the same for every allocator, and the article says it.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

__all__ = ["allocator_calls"]


@cache
def _malloc_free() -> tuple[Any, Any]:
    """malloc and free as the process resolves them (the preloaded allocator first)."""
    lib = ctypes.CDLL(None)
    malloc, free = lib.malloc, lib.free
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    return malloc, free


def allocator_calls(blocks: int, block_bytes: int) -> int:
    """Allocate and free `blocks` blocks of `block_bytes`, one at a time; the calls that
    succeeded (a failed malloc is not an error here: the probe still answers)."""
    if blocks <= 0 or block_bytes <= 0:
        return 0
    malloc, free = _malloc_free()
    done = 0
    for _ in range(blocks):
        pointer = malloc(block_bytes)
        if pointer:
            free(pointer)
            done += 1
    return done
