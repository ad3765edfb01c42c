"""The program's own live heap, beside the anonymous memory: is growth a leak or the allocator?

Anonymous memory alone cannot tell a program that keeps more objects from an allocator that
keeps freed memory. This module reports what the program itself holds, counted twice over:

- `malloc_in_use_bytes`: the bytes the program has allocated and not freed, as the allocator
  serving malloc counts them (None when that allocator offers no count); each family's
  module says how it counts (`heap_counter` of service.allocators.glibc, .jemalloc,
  .tcmalloc, .mimalloc).
- `python_blocks` (`sys.getallocatedblocks()`), `gc_objects` (`len(gc.get_objects())`),
  `gc_counts` (`gc.get_count()`): the interpreter's own view, whatever the allocator.
  `python_blocks` counts pymalloc's blocks (and the large ones it passes on to malloc): under
  PYTHONMALLOC=malloc it is always 0, and `gc_objects` is the interpreter's count left.
  `gc_objects` includes garbage not yet collected: no collection is forced here, since freeing
  it would change the memory being measured.

The allocator is found by the library that really serves malloc (service.allocators.serving),
never by what is merely loaded: a second allocator loaded for another reason must not answer.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from functools import cache
from typing import Any

from service.allocators.readings import MallocCounter
from service.allocators.serving import family_of, malloc_library

__all__ = ["MallocCounter", "heap_record", "malloc_counter"]


@cache
def malloc_counter(library: str | None = None) -> MallocCounter | None:
    """The byte counter of the allocator serving malloc here (or of `library`), None if it
    offers none. Found once per process: the allocator cannot change under a running one."""
    try:
        lib = ctypes.CDLL(library or malloc_library())
    except OSError:
        return None
    try:
        counter: MallocCounter | None = family_of(lib).heap_counter(lib)
    except (OSError, AttributeError, ValueError):
        return None
    return counter


def heap_record() -> dict[str, Any]:
    """The `heap` record of /stats and of a hosted app's stats (see the module doc)."""
    counter = malloc_counter()
    in_use = counter.read() if counter is not None else None
    return {
        "malloc_in_use_bytes": in_use,
        "malloc_source": counter.source if counter is not None and in_use is not None else None,
        "python_blocks": sys.getallocatedblocks(),
        "gc_objects": len(gc.get_objects()),
        "gc_counts": list(gc.get_count()),
    }
