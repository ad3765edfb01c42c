"""CPython's own object allocator (pymalloc), whichever malloc lies under it.

- Which one runs: `PYTHONMALLOC` as this interpreter was started (`malloc_mode`), and, read
  back, `sys.getallocatedblocks()`: pymalloc's blocks in use, always 0 when objects go to
  malloc (PYTHONMALLOC=malloc), so a non-zero count proves pymalloc serves objects.

Standard library only: it runs inside a worker or a hosted app.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from service.allocators.readings import InternalStats

__all__ = ["NAME", "arena_bytes", "internal_stats", "malloc_mode", "read_mode"]

NAME = "python"


def malloc_mode() -> str:
    """The PYTHONMALLOC mode this interpreter was started with ("pymalloc" unless set)."""
    if sys.flags.ignore_environment:
        return "pymalloc"
    return os.environ.get("PYTHONMALLOC") or "pymalloc"


def read_mode() -> dict[str, Any]:
    """The read-back of `PYTHONMALLOC`: pymalloc when it holds blocks, else malloc."""
    blocks = sys.getallocatedblocks()
    return {
        "status": "read",
        "type": "pymalloc",
        "value": "pymalloc" if blocks > 0 else "malloc",
        "how": f"sys.getallocatedblocks() = {blocks} (pymalloc's blocks; 0 when objects go "
        "to malloc)",
    }


# --- internal statistics -------------------------------------------------------------------


def internal_stats() -> InternalStats:
    """pymalloc's own count: the blocks it has handed out (`sys.getallocatedblocks()`, a
    counter, cheap). Its arenas' bytes are absent: CPython exposes them only through
    `sys._debugmallocstats`, which walks every arena and prints to stderr, too costly and
    too noisy for a read per request."""
    stats = InternalStats(NAME)
    if malloc_mode().startswith("malloc"):
        why = "PYTHONMALLOC=malloc: objects go to malloc, pymalloc holds nothing"
        stats.lack("blocks", why)
        stats.lack("arenas", why)
        return stats
    stats.count("blocks", sys.getallocatedblocks(), "sys.getallocatedblocks()")
    stats.lack(
        "arenas",
        "pymalloc's arena bytes are exposed only by sys._debugmallocstats (walks every arena, "
        "prints to stderr)",
    )
    return stats


#: The line of sys._debugmallocstats that states the arenas' bytes ("N arenas * S bytes/arena
#: = B"), in CPython 3.8 to 3.13.
_ARENAS_LINE = re.compile(rb"^(\d+) arenas \* (\d+) bytes/arena\s*=\s*([\d,]+)", re.M)


def arena_bytes() -> tuple[int | None, str]:
    """The bytes of pymalloc's arenas now (mapped directly, not through malloc), and how they
    were read, or None and why not.

    CPython states them only in `sys._debugmallocstats`, which prints to the C stderr: its
    output is caught in a memory file for the call (about 0.2 ms with 100 MB of small
    objects here, so it is read every few seconds by the retention log, never per request).
    """
    if malloc_mode().startswith("malloc"):
        return None, "PYTHONMALLOC=malloc: objects go to malloc, pymalloc maps no arenas"
    sink = os.memfd_create("allocstudy-mallocstats", os.MFD_CLOEXEC)
    saved = os.dup(2)
    try:
        os.dup2(sink, 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
        os.lseek(sink, 0, os.SEEK_SET)
        text = b"".join(iter(lambda: os.read(sink, 1 << 16), b""))
    finally:
        os.close(saved)
        os.close(sink)
    found = _ARENAS_LINE.search(text)
    if found is None:
        return None, "sys._debugmallocstats printed no arenas line"
    return int(found.group(3).replace(b",", b"")), "sys._debugmallocstats arenas * bytes/arena"
