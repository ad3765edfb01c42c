"""How a measured child process starts: a clean allocator environment, its cgroup, its cores.

Shared by everything that starts a process whose allocator matters (the service, the C++
control, the allocator probe) and by the load generator, which must run on the stock
allocator whatever the process under test is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["ALLOCATOR_PREFIXES", "ALLOCATOR_VARIABLES", "child_setup", "without_allocator_env"]

#: Variables that change which allocator runs, or how it behaves.
ALLOCATOR_VARIABLES = ("LD_PRELOAD", "PYTHONMALLOC", "MALLOC_CONF", "GLIBC_TUNABLES")
ALLOCATOR_PREFIXES = ("MIMALLOC_", "TCMALLOC_", "JEMALLOC_", "_RJEM_", "MALLOC_", "HEAPPROFILE")


def without_allocator_env(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` without any allocator setting a parent may have inherited."""
    return {
        key: value
        for key, value in environ.items()
        if key not in ALLOCATOR_VARIABLES and not key.startswith(ALLOCATOR_PREFIXES)
    }


def child_setup(
    cgroup_procs: Path | None, cpus: set[int] | None, extra: Callable[[], None] | None = None
) -> Callable[[], None] | None:
    """A preexec_fn that joins the cgroup, then the cores, before exec.

    Joining before exec means nothing the program allocates is charged elsewhere (charged
    memory does not move with a process). It runs between fork and exec: plain system calls.
    """
    if cgroup_procs is None and cpus is None:
        return extra
    procs = os.fsencode(cgroup_procs) if cgroup_procs is not None else None

    def setup() -> None:
        if procs is not None:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)
        if cpus is not None:
            os.sched_setaffinity(0, cpus)
        if extra is not None:
            extra()

    return setup
