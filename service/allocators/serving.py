"""Which allocator serves malloc in this process: its library, its family, its version.

A failed LD_PRELOAD is silent (ld.so prints a warning and the program runs on glibc), and
`mallinfo2` proves nothing because libc always exports it. The proof is `dladdr(malloc)`:
the dynamic linker names the shared object whose `malloc` this process calls. The family is
then told by the symbol only that allocator exports, looked up in that object, so a second
allocator loaded for another reason cannot answer in its place; glibc is tried last, since
every process has it. Standard library and ctypes only.
"""

from __future__ import annotations

import ctypes
import fnmatch
import os
from types import ModuleType

from service.allocators import glibc, jemalloc, mimalloc, tcmalloc

__all__ = ["FAMILIES", "allocator_version", "family_named", "family_of", "malloc_library"]

#: The malloc families, in the order they are recognised (glibc last: every process has it).
FAMILIES: tuple[ModuleType, ...] = (mimalloc, jemalloc, tcmalloc, glibc)


class _DlInfo(ctypes.Structure):
    _fields_ = [
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    ]


def malloc_library() -> str:
    """Real path of the shared object that serves `malloc` in this process.

    `malloc` is looked up in the global namespace (what every caller of malloc binds to,
    a preloaded library first), then dladdr names the object that contains it.
    """
    process = ctypes.CDLL(None)
    address = ctypes.cast(process.malloc, ctypes.c_void_p).value
    dladdr = process.dladdr
    dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    dladdr.restype = ctypes.c_int
    info = _DlInfo()
    if not dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        raise OSError("dladdr could not name the object that serves malloc")
    return os.path.realpath(os.fsdecode(info.dli_fname))


def family_of(lib: ctypes.CDLL) -> ModuleType:
    """The family module of a library, by the symbol only that allocator exports."""
    for family in FAMILIES:
        if family.recognises(lib):
            return family
    return glibc


def family_named(path: str) -> str | None:
    """The family a library's file name says (None: no family's pattern); a hint for a
    report, never the proof, which is the symbol (`family_of`)."""
    base = os.path.basename(path)
    for family in FAMILIES:
        if any(fnmatch.fnmatch(base, pattern) for pattern in family.LIBRARY_NAMES):
            return str(family.NAME)
    return None


def allocator_version(library: str | None = None) -> str | None:
    """The version the allocator serving malloc reports about itself, or None if unknown.

    mimalloc: "2.0.9" or "3.4.3"; jemalloc: "5.3.0-0-g54eaed1d..."; gperftools: "gperftools 2.10";
    glibc: "glibc 2.36".
    """
    try:
        lib = ctypes.CDLL(library or malloc_library())
    except OSError:
        lib = ctypes.CDLL(None)
    family = family_of(lib)
    if not hasattr(lib, family.SYMBOL):  # gperftools without tc_version
        return None
    try:
        return str(family.version(lib))
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return None
