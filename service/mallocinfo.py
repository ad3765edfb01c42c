"""Which malloc really serves this process, and how much anonymous memory it holds.

A failed LD_PRELOAD is silent (ld.so prints a warning and the program runs on glibc), and
`mallinfo2` proves nothing because libc always exports it. The proof is `dladdr(malloc)`:
the dynamic linker names the shared object whose `malloc` this process calls. The allocator
is then asked for its own version through the symbol it alone exports.

`python -m service.mallocinfo` prints one JSON object
`{"pid", "malloc_library", "version", "pythonmalloc"}` (and `"knobs"`, the read-back of
service.knobprobe, when ALLOCSTUDY_KNOBS asks for one); the allocator registry runs it under
a preload to verify the preload. It imports only ctypes, json, os and sys, so it is fast.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

__all__ = [
    "Mallinfo2",
    "allocator_version",
    "anon_bytes",
    "malloc_library",
    "mallctl",
    "python_malloc_mode",
    "rss_anon_bytes",
]


class Mallinfo2(ctypes.Structure):
    """glibc's `struct mallinfo2` (2.33 and later): every field a size_t."""

    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


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


def _mimalloc_version(lib: ctypes.CDLL) -> str:
    # mimalloc 1.x and 2.x encode major*100 + minor*10 + patch (209 is 2.0.9); 3.x encodes
    # major*10000 + minor*100 + patch (30403 is 3.4.3).
    fn = lib.mi_version
    fn.restype = ctypes.c_int
    fn.argtypes = []
    code = int(fn())
    if code >= 10000:
        return f"{code // 10000}.{code // 100 % 100}.{code % 100}"
    return f"{code // 100}.{code // 10 % 10}.{code % 10}"


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


def _jemalloc_version(lib: ctypes.CDLL) -> str:
    fn = mallctl(lib)
    text = ctypes.c_char_p()
    size = ctypes.c_size_t(ctypes.sizeof(text))
    if fn(b"version", ctypes.byref(text), ctypes.byref(size), None, 0) != 0 or not text.value:
        raise OSError("mallctl('version') failed")
    return text.value.decode(errors="replace")


def _tcmalloc_version(lib: ctypes.CDLL) -> str:
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


def _glibc_version(lib: ctypes.CDLL) -> str:
    fn = lib.gnu_get_libc_version
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    return f"glibc {fn().decode()}"


# Each allocator answers through a symbol only it exports; glibc last, since every process
# has it. The symbols are looked up in the object that serves malloc, so a second allocator
# loaded for another reason cannot answer in its place.
_PROBES = (
    ("mi_version", _mimalloc_version),
    ("mallctl", _jemalloc_version),
    ("tc_version", _tcmalloc_version),
    ("gnu_get_libc_version", _glibc_version),
)


def allocator_version(library: str | None = None) -> str | None:
    """The version the allocator serving malloc reports about itself, or None if unknown.

    mimalloc: "2.0.9" or "3.4.3"; jemalloc: "5.3.0-0-g54eaed1d..."; gperftools: "gperftools 2.10";
    glibc: "glibc 2.36".
    """
    try:
        lib = ctypes.CDLL(library or malloc_library())
    except OSError:
        lib = ctypes.CDLL(None)
    for symbol, probe in _PROBES:
        if not hasattr(lib, symbol):
            continue
        try:
            return probe(lib)
        except (OSError, ValueError, UnicodeDecodeError):
            return None
    return None


def python_malloc_mode() -> str:
    """The PYTHONMALLOC mode this interpreter was started with ("pymalloc" unless set)."""
    if sys.flags.ignore_environment:
        return "pymalloc"
    return os.environ.get("PYTHONMALLOC") or "pymalloc"


def _kib_field(path: str, name: str) -> int:
    prefix = name + ":"
    with open(path, encoding="ascii") as handle:
        for line in handle:
            if line.startswith(prefix):
                return int(line.split()[1]) * 1024
    raise OSError(f"{path} has no {name} field")


def anon_bytes(pid: int | str = "self") -> int:
    """Proportional anonymous memory (Pss_Anon of /proc/PID/smaps_rollup), bytes.

    Pages shared after fork are split between the sharers, so a sum over a process tree counts
    each page once. Raises OSError when the process is gone.
    """
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss_Anon")


def rss_anon_bytes(pid: int | str = "self") -> int:
    """Resident anonymous memory (RssAnon of /proc/PID/status), bytes; shared pages count fully."""
    return _kib_field(f"/proc/{pid}/status", "RssAnon")


def _main() -> int:
    library = malloc_library()
    report = {
        "pid": os.getpid(),
        "malloc_library": library,
        "version": allocator_version(library),
        "pythonmalloc": python_malloc_mode(),
    }
    if os.environ.get("ALLOCSTUDY_KNOBS"):  # settings and return timers, read back here too
        from service.knobprobe import read_knobs, requests_from_env

        report["knobs"] = read_knobs(requests_from_env())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
