"""mimalloc (2.x and 3.x): everything allocstudy knows of it, read inside the process.

- Recognised by `mi_version`, which only mimalloc exports; its file is `libmimalloc.so.2`
  (Debian, 2.0.9) or `libmimalloc.so.3` (the cmeel wheel, 3.4.3, and Bun's fork);
  `mi_version()` encodes its version.
- Its settings: `mi_option_get(<option>)`, the option numbered by the library's own listing
  (`mi_options_print_out`, v3.2 and later) or by the enum of the headers of 2.0.9 (which
  has no listing); older names it still reads from the environment map to their options.
- Its return timers: `purge_delay` (v3) or `decommit_delay` (2.0.9), read as options.
- Its heap count: used blocks times their size over the heap's areas
  (`mi_heap_visit_blocks`). mimalloc 3 visits the process's main heap, shared by every
  thread; mimalloc 2 has only per-thread heaps and visits the calling thread's (the event
  loop's, where an ASGI app allocates: a WSGI app's worker threads are missed, and the
  source says "this thread"). The count is checked once per process against 4 MiB
  allocated on purpose (at worker start-up, before any other thread allocates); a library
  whose count does not follow (another build, another struct layout) gives None rather than
  a wrong number.

Standard library and ctypes only: it runs inside a worker or a hosted app.
"""

from __future__ import annotations

import ctypes
import json
import re
from typing import Any

from service.allocators.readings import InternalStats, MallocCounter

__all__ = [
    "internal_stats",
    "recognises",
    "LIBRARY_NAMES",
    "MIMALLOC_V2_0_9_OPTIONS",
    "NAME",
    "SYMBOL",
    "heap_counter",
    "read_option",
    "version",
]

NAME = "mimalloc"
#: The symbol only this family exports, looked up in the library that serves malloc.
SYMBOL = "mi_version"
#: The file names dladdr gives for this family's library (fnmatch patterns).
LIBRARY_NAMES = ("libmimalloc*.so*",)

Reading = dict[str, Any]


def recognises(lib: ctypes.CDLL) -> bool:
    """Whether `lib` (the library serving malloc) is this family, by its own symbol."""
    return hasattr(lib, SYMBOL)


# mimalloc 2.0.9 has no option listing: its enum, from include/mimalloc.h at tag v2.0.9 (the
# same order as the option table of src/options.c, whose names the environment uses).
MIMALLOC_V2_0_9_OPTIONS: tuple[str, ...] = (
    "show_errors",
    "show_stats",
    "verbose",
    "eager_commit",
    "deprecated_eager_region_commit",
    "deprecated_reset_decommits",
    "large_os_pages",
    "reserve_huge_os_pages",
    "reserve_huge_os_pages_at",
    "reserve_os_memory",
    "deprecated_segment_cache",
    "page_reset",
    "abandoned_page_decommit",
    "deprecated_segment_reset",
    "eager_commit_delay",
    "decommit_delay",
    "use_numa_nodes",
    "limit_os_alloc",
    "os_tag",
    "max_errors",
    "max_warnings",
    "max_segment_reclaim",
    "allow_decommit",
    "segment_decommit_delay",
    "decommit_extend_delay",
    "destroy_on_exit",
)
# Older names mimalloc still reads from the environment (MI_OPTION_LEGACY in src/options.c),
# by major version: 2.0.9, and 3.x (v3.4.3).
_MIMALLOC_LEGACY: dict[str, dict[str, str]] = {
    "2": {"abandoned_page_reset": "abandoned_page_decommit", "reset_delay": "decommit_delay"},
    "3": {
        "eager_region_commit": "arena_eager_commit",
        "reset_decommits": "purge_decommits",
        "large_os_pages": "allow_large_os_pages",
        "reset_delay": "purge_delay",
        "limit_os_alloc": "disallow_os_alloc",
        "decommit_extend_delay": "deprecated_purge_extend_delay",
        "abandoned_reclaim_on_free": "page_reclaim_on_free",
    },
}
# Options whose environment value is read in KiB (with K/M/G suffixes), by major version.
_MIMALLOC_KIB_V2 = frozenset({"reserve_os_memory"})


def version(lib: ctypes.CDLL) -> str:
    """ "2.0.9" or "3.4.3".

    mimalloc 1.x and 2.x encode major*100 + minor*10 + patch (209 is 2.0.9); 3.x encodes
    major*10000 + minor*100 + patch (30403 is 3.4.3).
    """
    fn = lib.mi_version
    fn.restype = ctypes.c_int
    fn.argtypes = []
    code = int(fn())
    if code >= 10000:
        return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
    return f"{code // 100}.{code // 10 % 10}.{code % 10}"


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


def heap_counter(lib: ctypes.CDLL) -> MallocCounter | None:
    """Bytes in use over the heap's areas, checked once against a known allocation."""
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


# --- settings ------------------------------------------------------------------------------


def _mimalloc_listing(lib: ctypes.CDLL) -> list[tuple[str, bool]] | None:
    """(name, in KiB) of every option, in enum order, as the library prints them; None when
    it has no `mi_options_print_out`."""
    if not hasattr(lib, "mi_options_print_out"):
        return None
    out_fun = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
    chunks: list[bytes] = []
    callback = out_fun(lambda msg, _arg: chunks.append(msg or b""))
    fn = lib.mi_options_print_out
    fn.restype = None
    fn.argtypes = [out_fun, ctypes.c_void_p]
    fn(callback, None)
    text = b"".join(chunks).decode(errors="replace")
    found = re.findall(r"option '([a-z0-9_]+)': -?\d+ ?(KiB)?", text)
    return [(name, bool(kib)) for name, kib in found] or None


def read_option(lib: ctypes.CDLL, name: str, version: str | None) -> Reading:
    """One option by its environment name (or a legacy one), as the library holds it."""
    major = (version or "").split(".", 1)[0]
    listing = _mimalloc_listing(lib)
    if listing is not None:
        how_list = "numbered by the library's own mi_options_print_out"
    elif version == "2.0.9":
        listing = [(n, n in _MIMALLOC_KIB_V2) for n in MIMALLOC_V2_0_9_OPTIONS]
        how_list = "numbered by the enum of mimalloc 2.0.9's mimalloc.h"
    else:
        return {
            "status": "unreadable",
            "how": "mimalloc mi_option_get",
            "why": f"mimalloc {version} lists no options and allocstudy has no table of its "
            "option numbers",
        }
    names = [n for n, _ in listing]
    option = name if name in names else _MIMALLOC_LEGACY.get(major, {}).get(name)
    if option not in names:
        return {
            "status": "absent",
            "how": f"mimalloc options ({how_list})",
            "why": f"mimalloc {version} has no option {name}",
        }
    index = names.index(option)
    fn = lib.mi_option_get
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_int]
    return {
        "status": "read",
        "type": "kib" if listing[index][1] else "integer",
        "setting": option,
        "value": str(int(fn(index))),
        "how": f"mimalloc mi_option_get({index} = {option}, {how_list})",
    }


# --- internal statistics -------------------------------------------------------------------


_SIZE_P = ctypes.POINTER(ctypes.c_size_t)
# mi_process_info's outputs, in its order (the same in 2.0.9 and 3.x).
_PROCESS_INFO = (
    "elapsed_ms",
    "user_ms",
    "system_ms",
    "current_rss",
    "peak_rss",
    "current_commit",
    "peak_commit",
    "page_faults",
)
_PROCESS_BYTES = frozenset({"current_rss", "peak_rss", "current_commit", "peak_commit"})
#: Room for mi_stats_get_json's text (3.4.3 writes about 2 KiB, bins included ~10 KiB).
_JSON_ROOM = 1 << 16
_NO_LIVE = (
    "mimalloc keeps no count of bytes in use in release builds (malloc_requested stays 0); "
    "the heap record's mi_heap_visit_blocks count is the live figure"
)
_NO_PURGE_QUEUE = "mimalloc exposes no statistic of the pages waiting for their purge delay"


def _process_info(lib: ctypes.CDLL, stats: InternalStats) -> None:
    fn = lib.mi_process_info
    fn.restype = None
    fn.argtypes = [_SIZE_P] * len(_PROCESS_INFO)
    values = [ctypes.c_size_t() for _ in _PROCESS_INFO]
    fn(*[ctypes.byref(v) for v in values])
    for name, value in zip(_PROCESS_INFO, values, strict=True):
        if name == "current_rss":  # mimalloc has no cheap RSS on Linux: it gives its commit
            stats.put(name, value.value, "mi_process_info current_rss (its commit, on Linux)")
        elif name in _PROCESS_BYTES:
            stats.put(name, value.value, f"mi_process_info {name}")
        else:
            stats.count(name, value.value, f"mi_process_info {name}")


def _stats_json(lib: ctypes.CDLL, stats: InternalStats) -> None:
    """mimalloc 3's statistics as JSON (mi_stats_get_json into our buffer): the address
    space reserved, the memory committed, and the pages in use, now."""
    fn = lib.mi_stats_get_json
    fn.restype = ctypes.c_char_p
    fn.argtypes = [ctypes.c_size_t, ctypes.c_char_p]
    room = ctypes.create_string_buffer(_JSON_ROOM)
    text = fn(_JSON_ROOM, room)
    data = json.loads(text or b"{}")
    for field, key in (("reserved", "reserved"), ("committed", "committed")):
        value = (data.get(key) or {}).get("current")
        if isinstance(value, int):
            stats.put(field, value, f"mi_stats_get_json {key}.current")
        else:
            stats.lack(field, f"mi_stats_get_json has no {key}.current")
    pages = (data.get("pages") or {}).get("current")
    if isinstance(pages, int):
        stats.count("pages", pages, "mi_stats_get_json pages.current")


def internal_stats(lib: ctypes.CDLL) -> InternalStats:
    """mi_process_info (both versions: the process's RSS and commit, now and at peak, its
    times and page faults) and, in mimalloc 3, mi_stats_get_json (reserved, committed,
    pages in use). 2.0.9 has no getter: `mi_stats_print_out` prints rounded text whose page
    counters release builds do not keep, so it is not parsed."""
    stats = InternalStats(NAME)
    if hasattr(lib, "mi_process_info"):
        _process_info(lib, stats)
    else:
        stats.lack("current_commit", "this mimalloc exports no mi_process_info")
    if hasattr(lib, "mi_stats_get_json"):
        try:
            _stats_json(lib, stats)
        except ValueError as exc:
            stats.lack("committed", f"mi_stats_get_json gave no JSON ({exc})")
    else:
        why = (
            "mimalloc 2 exports no statistics getter (mi_stats_print_out prints rounded "
            "text, and release builds keep no page counters)"
        )
        stats.lack("reserved", why)
        stats.lack("committed", why + "; current_commit is mi_process_info's")
    stats.lack("live", _NO_LIVE)
    stats.lack("awaiting_purge", _NO_PURGE_QUEUE)
    return stats
