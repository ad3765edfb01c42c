"""jemalloc: everything allocstudy knows of it, read inside the process through `mallctl`.

- Recognised by `mallctl`, which only jemalloc exports; its file is `libjemalloc.so.2`;
  `mallctl("version")` names its version.
- Its settings: `mallctl("opt.<name>")`, each option as jemalloc applied it (the type of
  each from jemalloc 5.3's table), and for `opt.background_thread` whether its threads run.
- Its return timers: `opt.dirty_decay_ms`, `opt.muzzy_decay_ms`, `opt.background_thread`
  (bench.allocators.timers asks for them).
- Its heap count: `stats.allocated` after bumping `epoch` (its statistics are a snapshot the
  bump refreshes).

Standard library and ctypes only: it runs inside a worker or a hosted app.
"""

from __future__ import annotations

import ctypes
import errno
import sys
from typing import Any

from service.allocators.readings import InternalStats, MallocCounter

__all__ = [
    "internal_stats",
    "recognises",
    "LIBRARY_NAMES",
    "NAME",
    "SYMBOL",
    "heap_counter",
    "mallctl",
    "read_option",
    "version",
]

NAME = "jemalloc"
#: The symbol only this family exports, looked up in the library that serves malloc.
SYMBOL = "mallctl"
#: The file names dladdr gives for this family's library (fnmatch patterns).
LIBRARY_NAMES = ("libjemalloc.so*",)

Reading = dict[str, Any]


def recognises(lib: ctypes.CDLL) -> bool:
    """Whether `lib` (the library serving malloc) is this family, by its own symbol."""
    return hasattr(lib, SYMBOL)


# jemalloc 5.3 opt.* values of 8 bytes that are not unsigned: strings and signed numbers.
_JEMALLOC_STRINGS = frozenset(
    {
        "opt.dss",
        "opt.junk",
        "opt.metadata_thp",
        "opt.percpu_arena",
        "opt.prof_prefix",
        "opt.stats_interval_opts",
        "opt.stats_print_opts",
        "opt.thp",
        "opt.zero_realloc",
    }
)
_JEMALLOC_SIGNED = frozenset(
    {
        "opt.dirty_decay_ms",
        "opt.muzzy_decay_ms",
        "opt.lg_prof_interval",
        "opt.lg_san_uaf_align",
        "opt.lg_tcache_nslots_mul",
        "opt.mutex_max_spin",
        "opt.stats_interval",
    }
)
_JEMALLOC_FIXED_POINT = frozenset({"opt.hpa_dirty_mult"})  # fxp_t: 16.16 fixed point


def mallctl(lib: ctypes.CDLL) -> Any:
    """jemalloc's mallctl(name, oldp, oldlenp, newp, newlen), typed for ctypes."""
    fn = lib.mallctl
    fn.restype = ctypes.c_int
    fn.argtypes = [
        ctypes.c_char_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_size_t),
        ctypes.c_void_p,
        ctypes.c_size_t,
    ]
    return fn


def version(lib: ctypes.CDLL) -> str:
    """ "5.3.0-0-g54eaed1d..."."""
    fn = mallctl(lib)
    text = ctypes.c_char_p()
    size = ctypes.c_size_t(ctypes.sizeof(text))
    if fn(b"version", ctypes.byref(text), ctypes.byref(size), None, 0) != 0 or not text.value:
        raise OSError("mallctl('version') failed")
    return text.value.decode(errors="replace")


def _refresh(call: Any) -> bool:
    """Bump `epoch`: jemalloc's statistics are a snapshot taken at the bump."""
    epoch = ctypes.c_uint64(1)
    return call(b"epoch", None, None, ctypes.byref(epoch), ctypes.sizeof(epoch)) == 0


def _size_t(call: Any, name: bytes) -> int | None:
    value = ctypes.c_size_t()
    size = ctypes.c_size_t(ctypes.sizeof(value))
    if call(name, ctypes.byref(value), ctypes.byref(size), None, 0) != 0:
        return None
    return int(value.value)


def heap_counter(lib: ctypes.CDLL) -> MallocCounter | None:
    """Bytes in use: `stats.allocated` after an epoch bump (None: a build without stats)."""
    call = mallctl(lib)

    def read() -> int | None:
        if not _refresh(call):
            return None
        return _size_t(call, b"stats.allocated")

    return MallocCounter("jemalloc stats.allocated", read) if read() is not None else None


# --- settings ------------------------------------------------------------------------------


def read_option(lib: ctypes.CDLL, name: str) -> Reading:
    """One opt.* value: its size found by asking with 8 bytes (jemalloc answers EINVAL and
    the true size for a smaller type), its meaning from the type table of jemalloc 5.3."""
    call = mallctl(lib)
    buf = ctypes.create_string_buffer(8)
    size = ctypes.c_size_t(8)
    how = f"jemalloc mallctl {name}"
    rc = call(name.encode(), buf, ctypes.byref(size), None, 0)
    if rc == errno.ENOENT:
        return {"status": "absent", "how": how, "why": f"jemalloc has no setting {name}"}
    if rc == errno.EINVAL and size.value in (1, 4):
        buf = ctypes.create_string_buffer(8)
        rc = call(name.encode(), buf, ctypes.byref(size), None, 0)
    if rc != 0:
        return {"status": "unreadable", "how": how, "why": f"mallctl {name} failed ({rc})"}
    raw = buf.raw
    if size.value == 1 and name == "opt.background_thread":
        return _with_running_threads(call, {"status": "read", "type": "bool", "how": how}, raw)
    if size.value == 1:
        return {
            "status": "read",
            "type": "bool",
            "value": "true" if raw[0] else "false",
            "how": how,
        }
    if size.value == 4:
        number = int.from_bytes(raw[:4], sys.byteorder)
        if name in _JEMALLOC_FIXED_POINT:
            return {"status": "read", "type": "fixed", "value": repr(number / 65536), "how": how}
        return {"status": "read", "type": "unsigned", "value": str(number), "how": how}
    if name in _JEMALLOC_STRINGS:
        text = ctypes.cast(buf, ctypes.POINTER(ctypes.c_char_p))[0]
        return {"status": "read", "type": "string", "value": (text or b"").decode(), "how": how}
    signed = name in _JEMALLOC_SIGNED
    number = int.from_bytes(raw, sys.byteorder, signed=signed)
    return {
        "status": "read",
        "type": "signed" if signed else "unsigned",
        "value": str(number),
        "how": how,
    }


def _with_running_threads(mallctl: Any, reading: Reading, raw: bytes) -> Reading:
    """opt.background_thread, and whether jemalloc runs them (mallctl background_thread)."""
    reading["value"] = "true" if raw[0] else "false"
    state = ctypes.c_bool()
    size = ctypes.c_size_t(1)
    if mallctl(b"background_thread", ctypes.byref(state), ctypes.byref(size), None, 0) == 0:
        reading["effect"] = {
            "ok": bool(state.value) == bool(raw[0]),
            "text": f"mallctl background_thread (threads enabled now) is "
            f"{'true' if state.value else 'false'}",
        }
    return reading


# --- internal statistics -------------------------------------------------------------------


#: jemalloc 5's MALLCTL_ARENAS_ALL: the arena index that sums every arena.
ARENAS_ALL = 4096

# (field, mallctl name): byte counts of the statistics snapshot.
_BYTES = (
    ("live", "stats.allocated"),
    ("active", "stats.active"),
    ("resident", "stats.resident"),
    ("mapped", "stats.mapped"),
    ("retained", "stats.retained"),
    ("metadata", "stats.metadata"),
)


def internal_stats(lib: ctypes.CDLL) -> InternalStats:
    """jemalloc's statistics after one `epoch` bump: bytes allocated (`live`), in active
    pages, resident, mapped, retained (unmapped but kept as address space) and metadata,
    and the dirty and muzzy pages of every arena (freed, not yet purged) times the page
    size. A build without statistics says so for every field."""
    stats = InternalStats(NAME)
    call = mallctl(lib)
    fields = [f for f, _ in _BYTES] + ["dirty", "muzzy"]
    if not _refresh(call):
        for field in fields:
            stats.lack(field, "mallctl epoch failed")
        return stats
    for field, name in _BYTES:
        value = _size_t(call, name.encode())
        if value is None:
            stats.lack(field, f"mallctl {name} failed (a build without statistics?)")
        else:
            stats.put(field, value, f"mallctl {name}")
    page = _size_t(call, b"arenas.page")
    for field in ("dirty", "muzzy"):
        name = f"stats.arenas.{ARENAS_ALL}.p{field}"
        pages = _size_t(call, name.encode())
        if pages is None or page is None:
            stats.lack(field, f"mallctl {name} or arenas.page failed")
        else:
            stats.put(field, pages * page, f"mallctl {name} x arenas.page")
    return stats
