"""Read back, inside this process, the allocator settings a variant asked for.

An environment variable proves nothing: jemalloc ignores a misspelt MALLOC_CONF pair with a
warning, mimalloc and gperftools ignore names they do not know, glibc skips an unknown
tunable, and an allocator that does not serve malloc ignores them all. So each process asks
the allocator that serves its malloc for the value in effect, through what that library
itself exposes:

- jemalloc: `mallctl("opt.<name>")`, the option as jemalloc applied it;
- mimalloc: `mi_option_get(<option>)`, the option numbered by the library's own listing
  (`mi_options_print_out`, v3.2 and later) or by the enum of the headers of 2.0.9 (which
  has no listing);
- gperftools tcmalloc: its exported flag variables (`FLAGS_tcmalloc_release_rate`, ...) and
  `MallocExtension_GetNumericProperty`;
- glibc: there is no getter for malloc's parameters, so glibc's own tunables parser reports
  what it made of this process's environment (`ld.so --list-tunables`, run from here with
  this environment), and where malloc shows the effect, a forked copy of this process checks
  it: how many arenas form when more threads than `arena_max` allocate at once (malloc_info),
  and whether the mmap threshold stays fixed after a large free (glibc stops adjusting it
  once a trim threshold, top pad, mmap threshold or mmap max is set);
- CPython: `sys.getallocatedblocks()` counts pymalloc's blocks, and is 0 when objects go to
  malloc (PYTHONMALLOC=malloc).

The runner says what to read (bench.allocators.knobs parses the variant's environment into
requests) through the environment variable ALLOCSTUDY_KNOBS, a JSON list of
`{"family", "read", "name", "type"}`; `read_knobs` answers each with a reading:
`{"status": "read"|"absent"|"not-served"|"unreadable", "value", "type", "how", "why", ...}`.
It imports only the standard library (the service must not import bench).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from typing import Any

from service.mallocinfo import Mallinfo2, allocator_version, malloc_library
from service.mallocinfo import mallctl as mallctl_of

__all__ = [
    "KNOBS_ENV",
    "MIMALLOC_V2_0_9_OPTIONS",
    "allocator_family",
    "read_knobs",
    "requests_from_env",
]

#: The variable that carries the read-back requests into every process of the service.
KNOBS_ENV = "ALLOCSTUDY_KNOBS"

Reading = dict[str, Any]

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


def allocator_family(lib: ctypes.CDLL) -> str:
    """Which allocator a library is, by the symbol only that allocator exports."""
    if hasattr(lib, "mi_version"):
        return "mimalloc"
    if hasattr(lib, "mallctl"):
        return "jemalloc"
    if hasattr(lib, "tc_version") or hasattr(lib, "MallocExtension_GetNumericProperty"):
        return "tcmalloc"
    return "glibc"


def requests_from_env(environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The read-back requests this process was started with (none when the variable is unset
    or unreadable: a bad value must not stop a worker, and then nothing is proven)."""
    text = (os.environ if environ is None else environ).get(KNOBS_ENV)
    if not text:
        return []
    try:
        requests = json.loads(text)
    except ValueError:
        return []
    return [r for r in requests if isinstance(r, dict)] if isinstance(requests, list) else []


# --- jemalloc ------------------------------------------------------------------------------


def _jemalloc_read(lib: ctypes.CDLL, name: str) -> Reading:
    """One opt.* value: its size found by asking with 8 bytes (jemalloc answers EINVAL and
    the true size for a smaller type), its meaning from the type table of jemalloc 5.3."""
    mallctl = mallctl_of(lib)
    buf = ctypes.create_string_buffer(8)
    size = ctypes.c_size_t(8)
    how = f"jemalloc mallctl {name}"
    rc = mallctl(name.encode(), buf, ctypes.byref(size), None, 0)
    if rc == errno.ENOENT:
        return {"status": "absent", "how": how, "why": f"jemalloc has no setting {name}"}
    if rc == errno.EINVAL and size.value in (1, 4):
        buf = ctypes.create_string_buffer(8)
        rc = mallctl(name.encode(), buf, ctypes.byref(size), None, 0)
    if rc != 0:
        return {"status": "unreadable", "how": how, "why": f"mallctl {name} failed ({rc})"}
    raw = buf.raw
    if size.value == 1 and name == "opt.background_thread":
        return _with_running_threads(mallctl, {"status": "read", "type": "bool", "how": how}, raw)
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


# --- mimalloc ------------------------------------------------------------------------------


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


def _mimalloc_read(lib: ctypes.CDLL, name: str, version: str | None) -> Reading:
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


# --- gperftools tcmalloc -------------------------------------------------------------------

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


def _tcmalloc_read(lib: ctypes.CDLL, read: str, name: str, kind: str) -> Reading:
    if read == "property":
        how = f"gperftools MallocExtension_GetNumericProperty({name})"
        fn = lib.MallocExtension_GetNumericProperty
        fn.restype = ctypes.c_int
        fn.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t)]
        value = ctypes.c_size_t()
        if not fn(name.encode(), ctypes.byref(value)):
            return {"status": "unreadable", "how": how, "why": f"no property {name}"}
        return {"status": "read", "type": kind, "value": str(value.value), "how": how}
    symbol = _flag_symbol(name, kind)
    how = f"gperftools flag FLAGS_{name}"
    ctype = _FLAG_TYPES.get(kind, (kind, None))[1]
    try:
        value = ctype.in_dll(lib, symbol).value  # type: ignore[union-attr]
    except (AttributeError, ValueError):
        return {"status": "unreadable", "how": how, "why": f"the library exports no {symbol}"}
    text = repr(float(value)) if kind == "double" else str(value).lower()
    return {"status": "read", "type": kind, "value": text, "how": how}


# --- glibc ---------------------------------------------------------------------------------


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


def _tunables() -> dict[str, tuple[int, int, int]] | str:
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


def _glibc_read(name: str, family: str, tunables: dict[str, tuple[int, int, int]] | str) -> Reading:
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


# --- CPython -------------------------------------------------------------------------------


def _python_read() -> Reading:
    blocks = sys.getallocatedblocks()
    return {
        "status": "read",
        "type": "pymalloc",
        "value": "pymalloc" if blocks > 0 else "malloc",
        "how": f"sys.getallocatedblocks() = {blocks} (pymalloc's blocks; 0 when objects go "
        "to malloc)",
    }


# --- all together --------------------------------------------------------------------------


def read_knobs(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Read back every request in this process: the serving allocator's family and version,
    and one reading per request (in order), each with how it was read."""
    library = malloc_library()
    lib = ctypes.CDLL(library)
    family = allocator_family(lib)
    version = allocator_version(library)
    tunables: dict[str, tuple[int, int, int]] | str | None = None
    readings = []
    for request in requests:
        want, read, name = request.get("family"), request.get("read"), str(request.get("name"))
        try:
            if want == "python":
                reading = _python_read()
            elif want == "glibc":
                if tunables is None:
                    tunables = _tunables()
                reading = _glibc_read(name, family, tunables)
            elif want != family:
                reading = {
                    "status": "not-served",
                    "how": "dladdr(malloc)",
                    "why": f"malloc is served by {family}, so a {want} setting does nothing",
                }
            elif want == "jemalloc":
                reading = _jemalloc_read(lib, name)
            elif want == "mimalloc":
                reading = _mimalloc_read(lib, name, version)
            elif want == "tcmalloc":
                reading = _tcmalloc_read(lib, str(read), name, str(request.get("type")))
            else:
                reading = {"status": "unreadable", "how": "-", "why": f"unknown family {want}"}
        except (OSError, ValueError, AttributeError) as exc:
            reading = {"status": "unreadable", "how": f"{want} {name}", "why": str(exc)}
        readings.append({"id": request.get("id"), "family": want, "name": name, **reading})
    return {
        "pid": os.getpid(),
        "library": library,
        "family": family,
        "version": version,
        "readings": readings,
    }


def _main() -> int:
    print(json.dumps(read_knobs(requests_from_env())))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
