"""How a measured child process starts: a clean allocator environment, its cgroup, its cores.

Shared by everything that starts a process whose allocator matters (the service, the C++
control, the allocator probe) and by the load generator, which must run on the stock
allocator whatever the process under test is given.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = [
    "ALLOCATOR_PREFIXES",
    "ALLOCATOR_VARIABLES",
    "child_setup",
    "die_with_parent",
    "without_allocator_env",
]

_PR_SET_PDEATHSIG = 1
# Looked up once here, in the parent: between fork and exec only the call itself may run.
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send `sig` to this process when its parent dies (Linux prctl).

    A runner killed with SIGKILL (or a lost terminal, or the OOM killer) cannot clean up: its
    service, control and load generator would run on for hours, holding memory and a port,
    and their cgroup could not be removed. With this set in each of them, the kernel ends
    them with their parent. Safe between fork and exec (one system call).
    """
    _prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


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
) -> Callable[[], None]:
    """A preexec_fn that ties the child's life to this process, joins the cgroup, then the
    cores, before exec.

    Joining before exec means nothing the program allocates is charged elsewhere (charged
    memory does not move with a process). It runs between fork and exec: plain system calls.
    """
    procs = os.fsencode(cgroup_procs) if cgroup_procs is not None else None

    def setup() -> None:
        die_with_parent()
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
