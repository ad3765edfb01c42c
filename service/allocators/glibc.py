"""glibc's malloc (ptmalloc2): everything allocstudy knows of it, read inside the process.

- Recognised by `gnu_get_libc_version`, which only the C library exports (every process has
  one, so glibc is the family of last resort); its file is `libc.so.6`.
- Its settings: there is no getter for malloc's parameters, so glibc's own tunables parser
  reports what it made of this process's environment (`ld.so --list-tunables`, run from
  here with this environment), and where malloc shows the effect, a forked copy of this
  process checks it: how many arenas form when more threads than `arena_max` allocate at
  once (malloc_info), and whether the mmap threshold stays fixed after a large free (glibc
  stops adjusting it once a trim threshold, top pad, mmap threshold or mmap max is set).
- Its return timers: none; `free` trims the top of a heap above M_TRIM_THRESHOLD
  (bench.allocators.timers says so in the manifest).
- Its heap count: `mallinfo2()` uordblks + hblkhd (heap chunks in use plus mmapped blocks,
  every arena).

Standard library and ctypes only: it runs inside a worker or a hosted app.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from service.allocators.readings import InternalStats, MallocCounter

__all__ = [
    "internal_stats",
    "recognises",
    "ARENA_PROBE_MAX",
    "LIBRARY_NAMES",
    "NAME",
    "SYMBOL",
    "Mallinfo2",
    "heap_counter",
    "read_tunable",
    "tunables",
    "version",
]

NAME = "glibc"
#: The symbol only this family exports, looked up in the library that serves malloc.
SYMBOL = "gnu_get_libc_version"
#: The file names dladdr gives for this family's library (fnmatch patterns).
LIBRARY_NAMES = ("libc.so.*", "libc-*.so")

Reading = dict[str, Any]


def recognises(lib: ctypes.CDLL) -> bool:
    """Whether `lib` (the library serving malloc) is this family, by its own symbol."""
    return hasattr(lib, SYMBOL)


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


def version(lib: ctypes.CDLL) -> str:
    """ "glibc 2.36"."""
    fn = lib.gnu_get_libc_version
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    return f"glibc {fn().decode()}"


def _mallinfo2(lib: ctypes.CDLL) -> Callable[[], Mallinfo2] | None:
    if not hasattr(lib, "mallinfo2"):  # glibc before 2.33: mallinfo's ints wrap at 2 GiB
        return None
    fn = lib.mallinfo2
    fn.restype = Mallinfo2
    fn.argtypes = []
    return fn  # type: ignore[no-any-return]


def heap_counter(lib: ctypes.CDLL) -> MallocCounter | None:
    """Bytes in use: heap chunks in use plus mmapped blocks, over every arena."""
    fn = _mallinfo2(lib)
    if fn is None:
        return None

    def read() -> int:
        info = fn()
        return int(info.uordblks + info.hblkhd)

    return MallocCounter("glibc mallinfo2 uordblks+hblkhd", read)


# --- settings ------------------------------------------------------------------------------


def _loader() -> str | None:
    """The dynamic loader mapped into this process (it runs --list-tunables)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if path.startswith("/") and os.path.basename(path).startswith("ld-linux"):
                    return path
    except OSError:
        return None
    return None


_NUMBER = r"(0x[0-9a-f]+|\d+)"
# "glibc.malloc.arena_max: 0x2 (min: 0x1, max: 0xffffffffffffffff)"
_TUNABLE_LINE = re.compile(rf"^(glibc\.[\w.]+): {_NUMBER} \(min: {_NUMBER}, max: {_NUMBER}\)")


def tunables() -> dict[str, tuple[int, int, int]] | str:
    """glibc's tunables as its own parser reads this process's environment (name: value,
    min, max), or why not."""
    loader = _loader()
    if loader is None:
        return "no ld-linux loader is mapped in this process"
    try:
        out = subprocess.run(
            [loader, "--list-tunables"],
            env=dict(os.environ),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{loader} --list-tunables failed: {exc}"
    found = {}
    for line in out.stdout.splitlines():
        m = _TUNABLE_LINE.match(line)
        if m:
            found[m.group(1)] = (int(m.group(2), 0), int(m.group(3), 0), int(m.group(4), 0))
    return found or f"{loader} --list-tunables listed nothing (glibc older than 2.33?)"


def _in_fork(work: Callable[[], dict[str, Any]], timeout: float = 10.0) -> dict[str, Any]:
    """Run `work` in a forked copy of this process (same heap, same malloc parameters) and
    return its answer, so what it allocates and the arenas its threads create never touch
    the process being measured."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the copy: answer, then leave without running any exit handler
        code = 0
        try:
            os.close(read_end)
            os.write(write_end, json.dumps(work()).encode())
        except BaseException:  # noqa: BLE001 - the copy must never return into the caller
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    data = b""
    try:
        with os.fdopen(read_end, "rb") as pipe:
            data = pipe.read()
    finally:
        os.waitpid(pid, 0)
    try:
        answer = json.loads(data)
    except ValueError:
        return {"error": "the forked probe gave no answer"}
    return answer if isinstance(answer, dict) else {"error": "the forked probe gave no answer"}


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    return libc


def _arena_count(libc: ctypes.CDLL) -> int:
    """Arenas (heaps) malloc_info lists now."""
    libc.fdopen.restype = ctypes.c_void_p
    libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.TemporaryFile() as handle:
        stream = libc.fdopen(os.dup(handle.fileno()), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        handle.seek(0)
        text = handle.read().decode(errors="replace")
    return len(re.findall(r"<heap nr=", text))


def _arenas_with_threads(threads: int) -> dict[str, Any]:
    """In the fork: `threads` threads each malloc and wait until all have; count arenas."""
    libc = _libc()
    barrier = threading.Barrier(threads + 1, timeout=5)

    def allocate() -> None:
        block = libc.malloc(1024)
        barrier.wait()  # every thread holds its arena at once ...
        barrier.wait()  # ... until counted
        libc.free(block)

    started = [threading.Thread(target=allocate, daemon=True) for _ in range(threads)]
    for thread in started:
        thread.start()
    barrier.wait()
    arenas = _arena_count(libc)
    barrier.wait()
    for thread in started:
        thread.join(5)
    return {"arenas": arenas, "threads": threads}


def _mmap_threshold_moves() -> dict[str, Any]:
    """In the fork: free a 24 MiB mmapped block, then ask for 16 MiB. glibc's dynamic mmap
    threshold rises to the freed size, so 16 MiB then comes from the heap; once a trim or
    mmap parameter is set the threshold is fixed and 16 MiB is mmapped again."""
    libc = _libc()
    libc.mallinfo2.restype = Mallinfo2
    libc.mallinfo2.argtypes = []
    first = libc.malloc(24 << 20)
    libc.free(first)
    before = libc.mallinfo2().hblks
    second = libc.malloc(16 << 20)
    mapped = libc.mallinfo2().hblks > before
    libc.free(second)
    return {"fixed": bool(mapped)}


_FIXING_TUNABLES = frozenset(
    {
        "glibc.malloc.trim_threshold",
        "glibc.malloc.top_pad",
        "glibc.malloc.mmap_threshold",
        "glibc.malloc.mmap_max",
    }
)
#: The most threads the arena probe starts (arena_max above this is read back only).
ARENA_PROBE_MAX = 32


def read_tunable(
    name: str, family: str, tunables: dict[str, tuple[int, int, int]] | str
) -> Reading:
    how = "glibc's tunables parser on this process's environment (ld.so --list-tunables)"
    if name.startswith("glibc.malloc.") and family != "glibc":
        return {
            "status": "not-served",
            "how": how,
            "why": f"malloc is served by {family}, so glibc's malloc settings do nothing",
        }
    if isinstance(tunables, str):
        return {"status": "unreadable", "how": how, "why": tunables}
    if name not in tunables:
        return {"status": "absent", "how": how, "why": f"this glibc has no tunable {name}"}
    value, low, high = tunables[name]
    reading: Reading = {
        "status": "read",
        "type": "unsigned",
        "value": str(value),
        "range": [low, high],
        "how": how,
    }
    if name == "glibc.malloc.arena_max" and 0 < value <= ARENA_PROBE_MAX:
        seen = _in_fork(lambda: _arenas_with_threads(value + 2))
        if "arenas" in seen:
            ok = seen["arenas"] == value
            reading["effect"] = {
                "ok": ok,
                "text": f"{seen['arenas']} arenas formed while {seen['threads']} threads "
                "allocated at once (malloc_info, in a fork of this process)",
            }
    elif name in _FIXING_TUNABLES:  # 0 is a value here, and also what "unset" lists
        seen = _in_fork(_mmap_threshold_moves)
        if "fixed" in seen:
            reading["effect"] = {
                "ok": bool(seen["fixed"]),
                "text": "the mmap threshold stayed fixed after a 24 MiB free"
                if seen["fixed"]
                else "the mmap threshold still moved after a 24 MiB free (dynamic, as "
                "when nothing is set)",
            }
    return reading


# --- internal statistics -------------------------------------------------------------------


def internal_stats(lib: ctypes.CDLL) -> InternalStats:
    """mallinfo2 over every arena: what the program holds (`live`: in-use chunks plus mmapped
    blocks), what is free inside the heaps (`free_in_heaps`: fordblks, every free chunk
    including each heap's top, resident or not: glibc cannot tell), the top of the main heap
    that `malloc_trim` could give back (`releasable_top`: keepcost), the heaps' size
    (`arena`) and the mmapped blocks (`mmapped`: hblkhd). One call, no lock held long."""
    stats = InternalStats(NAME)
    fn = _mallinfo2(lib)
    if fn is None:
        for field in ("live", "free_in_heaps", "releasable_top", "arena", "mmapped"):
            stats.lack(field, "this glibc has no mallinfo2 (before 2.33; mallinfo wraps at 2 GiB)")
        return stats
    info = fn()
    stats.put("live", info.uordblks + info.hblkhd, "mallinfo2 uordblks+hblkhd")
    stats.put("free_in_heaps", info.fordblks, "mallinfo2 fordblks (free chunks, tops included)")
    stats.put("releasable_top", info.keepcost, "mallinfo2 keepcost")
    stats.put("arena", info.arena, "mallinfo2 arena")
    stats.put("mmapped", info.hblkhd, "mallinfo2 hblkhd")
    return stats
