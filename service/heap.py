"""The program's own live heap, beside the anonymous memory: is growth a leak or the allocator?

Anonymous memory alone cannot tell a program that keeps more objects from an allocator that
keeps freed memory. This module reports what the program itself holds, counted twice over:

- `malloc_in_use_bytes`: the bytes the program has allocated and not freed, as the allocator
  serving malloc counts them (None when that allocator offers no count):
  glibc `mallinfo2()` uordblks + hblkhd (heap chunks in use plus mmapped blocks, every arena);
  jemalloc `stats.allocated` after bumping `epoch` (its statistics are a snapshot refreshed by
  the bump); gperftools `generic.current_allocated_bytes`; mimalloc the sum of used blocks times
  their size over the heap's areas (`mi_heap_visit_blocks`). mimalloc 3 visits the process's
  main heap, shared by every thread; mimalloc 2 has only per-thread heaps and visits the
  calling thread's (the event loop's, where an ASGI app allocates: a WSGI app's worker threads
  are missed, and `malloc_source` says "this thread"). The mimalloc count is checked once per
  process against 4 MiB allocated on purpose (at worker start-up, service.workerstart, before
  any other thread allocates); a library whose count does not follow (another build, another
  struct layout) gives None rather than a wrong number.
- `python_blocks` (`sys.getallocatedblocks()`), `gc_objects` (`len(gc.get_objects())`),
  `gc_counts` (`gc.get_count()`): the interpreter's own view, whatever the allocator.
  `python_blocks` counts pymalloc's blocks (and the large ones it passes on to malloc): under
  PYTHONMALLOC=malloc it is always 0, and `gc_objects` is the interpreter's count left.
  `gc_objects` includes garbage not yet collected: no collection is forced here, since freeing
  it would change the memory being measured.

The allocator is found by the library that really serves malloc (service.mallocinfo), never by
what is merely loaded: a second allocator loaded for another reason must not answer.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from service.mallocinfo import Mallinfo2, mallctl, malloc_library

__all__ = ["MallocCounter", "heap_record", "malloc_counter"]


@dataclass(frozen=True)
class MallocCounter:
    """How this process's allocator counts the bytes in use: `read()` and what it reads."""

    source: str
    read: Callable[[], int | None]


def _glibc(lib: ctypes.CDLL) -> MallocCounter | None:
    if not hasattr(lib, "mallinfo2"):  # glibc before 2.33: mallinfo's ints wrap at 2 GiB
        return None
    fn = lib.mallinfo2
    fn.restype = Mallinfo2
    fn.argtypes = []

    def read() -> int:
        info = fn()
        return int(info.uordblks + info.hblkhd)

    return MallocCounter("glibc mallinfo2 uordblks+hblkhd", read)


def _jemalloc(lib: ctypes.CDLL) -> MallocCounter | None:
    call = mallctl(lib)

    def read() -> int | None:
        epoch = ctypes.c_uint64(1)
        if call(b"epoch", None, None, ctypes.byref(epoch), ctypes.sizeof(epoch)) != 0:
            return None
        value = ctypes.c_size_t()
        size = ctypes.c_size_t(ctypes.sizeof(value))
        if call(b"stats.allocated", ctypes.byref(value), ctypes.byref(size), None, 0) != 0:
            return None  # a build without statistics
        return int(value.value)

    return MallocCounter("jemalloc stats.allocated", read) if read() is not None else None


def _tcmalloc(lib: ctypes.CDLL) -> MallocCounter | None:
    if not hasattr(lib, "MallocExtension_GetNumericProperty"):
        return None
    fn = lib.MallocExtension_GetNumericProperty
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]

    def read() -> int | None:
        value = ctypes.c_size_t()
        if not fn(b"generic.current_allocated_bytes", ctypes.byref(value)):
            return None
        return int(value.value)

    return MallocCounter("tcmalloc generic.current_allocated_bytes", read)


class _MiHeapArea(ctypes.Structure):
    # The leading fields of mi_heap_area_t, the same in mimalloc 2 and 3 (3 appends more).
    _fields_ = [
        ("blocks", ctypes.c_void_p),
        ("reserved", ctypes.c_size_t),
        ("committed", ctypes.c_size_t),
        ("used", ctypes.c_size_t),
        ("block_size", ctypes.c_size_t),
    ]


_MI_VISITOR = ctypes.CFUNCTYPE(
    ctypes.c_bool,
    ctypes.c_void_p,
    ctypes.POINTER(_MiHeapArea),
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_void_p,
)

#: What the mimalloc self-check allocates (64 blocks of 64 KiB), and how far off it may count.
_CHECK_BLOCKS, _CHECK_SIZE, _CHECK_SLACK = 64, 64 << 10, 1 << 20


def _mimalloc(lib: ctypes.CDLL) -> MallocCounter | None:
    if not hasattr(lib, "mi_heap_visit_blocks"):
        return None
    if hasattr(lib, "mi_heap_main"):  # mimalloc 3: one heap for the whole process
        heap_fn, where = lib.mi_heap_main, "main heap"
    elif hasattr(lib, "mi_heap_get_default"):  # mimalloc 2: each thread its own heap
        heap_fn, where = lib.mi_heap_get_default, "this thread's heap"
    else:
        return None
    heap_fn.restype = ctypes.c_void_p
    heap_fn.argtypes = []
    visit = lib.mi_heap_visit_blocks
    visit.restype = ctypes.c_bool
    visit.argtypes = [ctypes.c_void_p, ctypes.c_bool, _MI_VISITOR, ctypes.c_void_p]
    total = [0]

    def area(heap: Any, info: Any, block: Any, size: Any, arg: Any) -> bool:
        # Called once per area (visit_blocks false); plain arithmetic only, since this runs
        # inside the allocator's walk of its own pages.
        total[0] += info.contents.used * info.contents.block_size
        return True

    visitor = _MI_VISITOR(area)

    def read() -> int | None:
        total[0] = 0
        if not visit(heap_fn(), False, visitor, None):
            return None
        return total[0]

    counter = MallocCounter(f"mimalloc mi_heap_visit_blocks ({where})", read)
    return counter if _follows_a_known_allocation(lib, counter) else None


def _follows_a_known_allocation(lib: ctypes.CDLL, counter: MallocCounter) -> bool:
    """Whether `counter` rises by what is allocated on purpose and falls back after the free."""
    malloc, free = lib.malloc, lib.free
    malloc.restype, malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    free.restype, free.argtypes = None, [ctypes.c_void_p]
    before = counter.read()
    blocks = [malloc(_CHECK_SIZE) for _ in range(_CHECK_BLOCKS)]
    try:
        during = counter.read()
    finally:
        for block in blocks:
            free(block)
    after = counter.read()
    if before is None or during is None or after is None or not all(blocks):
        return False
    wanted = _CHECK_BLOCKS * _CHECK_SIZE
    return abs(during - before - wanted) < _CHECK_SLACK and abs(after - before) < _CHECK_SLACK


# Each allocator by the symbol only it exports, looked up in the library serving malloc;
# glibc last (every process has it).
_COUNTERS: tuple[tuple[str, Callable[[ctypes.CDLL], MallocCounter | None]], ...] = (
    ("mi_version", _mimalloc),
    ("mallctl", _jemalloc),
    ("tc_version", _tcmalloc),
    ("gnu_get_libc_version", _glibc),
)


@cache
def malloc_counter(library: str | None = None) -> MallocCounter | None:
    """The byte counter of the allocator serving malloc here (or of `library`), None if it
    offers none. Found once per process: the allocator cannot change under a running one."""
    try:
        lib = ctypes.CDLL(library or malloc_library())
    except OSError:
        return None
    for symbol, make in _COUNTERS:
        if hasattr(lib, symbol):
            try:
                return make(lib)
            except (OSError, AttributeError, ValueError):
                return None
    return None


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
