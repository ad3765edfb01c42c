"""Read back, inside this process, the allocator settings a variant asked for.

An environment variable proves nothing: jemalloc ignores a misspelt MALLOC_CONF pair with a
warning, mimalloc and gperftools ignore names they do not know, glibc skips an unknown
tunable, and an allocator that does not serve malloc ignores them all. So each process asks
the allocator that serves its malloc for the value in effect, through what that library
itself exposes; each family's module says how (service.allocators.glibc, .jemalloc,
.mimalloc, .tcmalloc, .python).

The runner says what to read (bench.allocators.knobs parses the variant's environment into
requests) through the environment variable ALLOCSTUDY_KNOBS, a JSON list of
`{"family", "read", "name", "type"}`; `read_knobs` answers each with a reading:
`{"status": "read"|"absent"|"not-served"|"unreadable", "value", "type", "how", "why", ...}`.
Standard library and ctypes only (the service must not import bench).
"""

from __future__ import annotations

import ctypes
import json
import os
from collections.abc import Mapping
from typing import Any

from service.allocators import glibc, jemalloc, mimalloc, python, tcmalloc
from service.allocators.serving import allocator_version, family_of, malloc_library

__all__ = ["KNOBS_ENV", "read_knobs", "requests_from_env"]

#: The variable that carries the read-back requests into every process of the service.
KNOBS_ENV = "ALLOCSTUDY_KNOBS"


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


def read_knobs(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Read back every request in this process: the serving allocator's family and version,
    and one reading per request (in order), each with how it was read."""
    library = malloc_library()
    lib = ctypes.CDLL(library)
    family = str(family_of(lib).NAME)
    version = allocator_version(library)
    tunables: dict[str, tuple[int, int, int]] | str | None = None
    readings = []
    for request in requests:
        want, read, name = request.get("family"), request.get("read"), str(request.get("name"))
        try:
            if want == python.NAME:
                reading = python.read_mode()
            elif want == glibc.NAME:
                if tunables is None:
                    tunables = glibc.tunables()
                reading = glibc.read_tunable(name, family, tunables)
            elif want != family:
                reading = {
                    "status": "not-served",
                    "how": "dladdr(malloc)",
                    "why": f"malloc is served by {family}, so a {want} setting does nothing",
                }
            elif want == jemalloc.NAME:
                reading = jemalloc.read_option(lib, name)
            elif want == mimalloc.NAME:
                reading = mimalloc.read_option(lib, name, version)
            elif want == tcmalloc.NAME:
                reading = tcmalloc.read_setting(lib, str(read), name, str(request.get("type")))
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
