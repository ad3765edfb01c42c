"""gperftools' tcmalloc (the minimal library): everything allocstudy knows of it, in-process.

- Recognised by `tc_version` (or `MallocExtension_GetNumericProperty`), which only
  gperftools exports; its file is `libtcmalloc_minimal.so.4` (or `libtcmalloc.so.4`);
  `tc_version` names its version.
- Its settings: its exported flag variables (`FLAGS_tcmalloc_release_rate`, ..., mangled
  in the library's namespace) and `MallocExtension_GetNumericProperty`.
- Its return timers: none; it returns page-heap spans at `TCMALLOC_RELEASE_RATE`'s pace as
  the program frees (bench.allocators.timers reads the flag).
- Its heap count: the property `generic.current_allocated_bytes`.

Standard library and ctypes only: it runs inside a worker or a hosted app.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from service.allocators.readings import InternalStats, MallocCounter

__all__ = [
    "internal_stats",
    "LIBRARY_NAMES",
    "NAME",
    "SYMBOL",
    "heap_counter",
    "numeric_property",
    "read_setting",
    "recognises",
    "version",
]

NAME = "tcmalloc"
#: The symbol only this family exports, looked up in the library that serves malloc.
SYMBOL = "tc_version"
#: The file names dladdr gives for this family's library (fnmatch patterns).
LIBRARY_NAMES = ("libtcmalloc_minimal.so*", "libtcmalloc.so*")

Reading = dict[str, Any]


def recognises(lib: ctypes.CDLL) -> bool:
    """Whether `lib` is gperftools (a build may lack tc_version but not the extension)."""
    return hasattr(lib, SYMBOL) or hasattr(lib, "MallocExtension_GetNumericProperty")


def version(lib: ctypes.CDLL) -> str:
    """ "gperftools 2.10"."""
    fn = lib.tc_version
    fn.restype = ctypes.c_char_p
    fn.argtypes = [
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_int),
        ctypes.POINTER(ctypes.c_char_p),
    ]
    major, minor, patch = ctypes.c_int(), ctypes.c_int(), ctypes.c_char_p()
    text = fn(ctypes.byref(major), ctypes.byref(minor), ctypes.byref(patch))
    return text.decode(errors="replace") if text else f"{major.value}.{minor.value}"


def numeric_property(lib: ctypes.CDLL) -> Callable[[str], int | None] | None:
    """A reader of `MallocExtension_GetNumericProperty(name)` (None: the library has none);
    it answers None for a property the library does not know."""
    if not hasattr(lib, "MallocExtension_GetNumericProperty"):
        return None
    fn = lib.MallocExtension_GetNumericProperty
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]

    def read(name: str) -> int | None:
        value = ctypes.c_size_t()
        if not fn(name.encode(), ctypes.byref(value)):
            return None
        return int(value.value)

    return read


def heap_counter(lib: ctypes.CDLL) -> MallocCounter | None:
    """Bytes in use: the property `generic.current_allocated_bytes`."""
    prop = numeric_property(lib)
    if prop is None:
        return None
    return MallocCounter(
        "tcmalloc generic.current_allocated_bytes",
        lambda: prop("generic.current_allocated_bytes"),
    )


# --- settings ------------------------------------------------------------------------------

_FLAG_TYPES: dict[str, tuple[str, Any]] = {
    "double": ("double", ctypes.c_double),
    "int64": ("int64", ctypes.c_int64),
    "int32": ("int32", ctypes.c_int32),
    "bool": ("bool", ctypes.c_bool),
}


def _flag_symbol(name: str, kind: str) -> str:
    """The mangled name of a gperftools flag variable (DEFINE_<kind> in its namespace)."""
    space = f"FLAG__namespace_do_not_use_directly_use_DECLARE_{kind}_instead"
    var = f"FLAGS_{name}"
    return f"_ZN{len(space)}{space}{len(var)}{var}E"


def read_setting(lib: ctypes.CDLL, read: str, name: str, kind: str) -> Reading:
    """One setting: a flag variable (`read` "flag") or a numeric property."""
    if read == "property":
        how = f"gperftools MallocExtension_GetNumericProperty({name})"
        prop = numeric_property(lib)
        value = prop(name) if prop is not None else None
        if value is None:
            return {"status": "unreadable", "how": how, "why": f"no property {name}"}
        return {"status": "read", "type": kind, "value": str(value), "how": how}
    symbol = _flag_symbol(name, kind)
    how = f"gperftools flag FLAGS_{name}"
    ctype = _FLAG_TYPES.get(kind, (kind, None))[1]
    try:
        value = ctype.in_dll(lib, symbol).value  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return {"status": "unreadable", "how": how, "why": f"the library exports no {symbol}"}
    text = repr(float(value)) if kind == "double" else str(value).lower()
    return {"status": "read", "type": kind, "value": text, "how": how}


# --- internal statistics -------------------------------------------------------------------


# (field, numeric property) of gperftools 2.10's MallocExtension, all in bytes.
_PROPERTIES = (
    ("live", "generic.current_allocated_bytes"),
    ("heap_size", "generic.heap_size"),
    ("pageheap_free", "tcmalloc.pageheap_free_bytes"),
    ("pageheap_unmapped", "tcmalloc.pageheap_unmapped_bytes"),
    ("central_cache_free", "tcmalloc.central_cache_free_bytes"),
    ("transfer_cache_free", "tcmalloc.transfer_cache_free_bytes"),
    ("thread_cache_free", "tcmalloc.thread_cache_free_bytes"),
)


def internal_stats(lib: ctypes.CDLL) -> InternalStats:
    """gperftools' numeric properties: bytes allocated (`live`), the heap it holds from the
    system (`heap_size`, unmapped pages included), free in its page heap (mapped, and
    already returned), and free in its central, transfer and thread caches."""
    stats = InternalStats(NAME)
    prop = numeric_property(lib)
    for field, name in _PROPERTIES:
        value = prop(name) if prop is not None else None
        if value is None:
            stats.lack(field, f"MallocExtension_GetNumericProperty({name}) is not answered")
        else:
            stats.put(field, value, f"MallocExtension_GetNumericProperty({name})")
    return stats
