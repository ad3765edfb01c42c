"""Helpers of the service and command tests: free ports, allocator libraries, process checks.

(At the top of tests/, like studyrun.py: tests/service and tests/commands both use it.)
"""

from __future__ import annotations

import os
import sys
import sysconfig
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from bench.allocators.registry import libc_path
from service.launcher import ServiceProcess, free_port, start_service

LIBDIR = Path("/usr/lib/x86_64-linux-gnu")
LIBRARIES: dict[str, Path | None] = {
    "glibc": None,
    "jemalloc": LIBDIR / "libjemalloc.so.2",
    "tcmalloc": LIBDIR / "libtcmalloc_minimal.so.4",
    "mimalloc-v2": LIBDIR / "libmimalloc.so.2",
    "mimalloc-v3": Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix/lib/libmimalloc.so.3",
}

#: A live set small enough for tests: 200 buffers of 4-16 KB per worker.
SMALL_CONFIG = {
    "workers": 2,
    "python_malloc": "pymalloc",
    "churn": {
        "live_buffers": 200,
        "initial_buffers": 200,
        "min_bytes": 4096,
        "max_bytes": 16384,
        "alloc_per_call": 25,
        "long_lived_share": 0.5,
        "short_lifetime_s": 0.2,
        "seed": 3,
    },
}


def library_or_skip(name: str) -> Path | None:
    library = LIBRARIES[name]
    if library is not None and not library.is_file():
        pytest.skip(f"{name} is not installed here ({library})")
    return library


def expected_library(name: str) -> str:
    """Real path of the library that must serve malloc under `name`."""
    library = LIBRARIES[name]
    return libc_path() if library is None else os.path.realpath(library)


def preload_env(name: str) -> dict[str, str]:
    library = library_or_skip(name)
    return {} if library is None else {"LD_PRELOAD": str(library)}


def running(pid: int) -> bool:
    """True while a process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids: Iterable[int], timeout: float = 2.0) -> list[int]:
    """The pids still running after up to `timeout` seconds."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


def start(
    name: str,
    *,
    workers: int = 2,
    service_config: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    **options: Any,
) -> ServiceProcess:
    """The real service under allocator `name`, with SMALL_CONFIG unless told otherwise."""
    return start_service(
        python=sys.executable,
        workers=workers,
        port=options.pop("port", None) or free_port(),
        env={**preload_env(name), **(env or {})},
        service_config=service_config or dict(SMALL_CONFIG, workers=workers),
        **options,
    )
