"""CPython's own object allocator (pymalloc), whichever malloc lies under it.

- Which one runs: `PYTHONMALLOC` as this interpreter was started (`malloc_mode`), and, read
  back, `sys.getallocatedblocks()`: pymalloc's blocks in use, always 0 when objects go to
  malloc (PYTHONMALLOC=malloc), so a non-zero count proves pymalloc serves objects.

Standard library only: it runs inside a worker or a hosted app.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from service.allocators.readings import InternalStats

__all__ = ["internal_stats", "NAME", "malloc_mode", "read_mode"]

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
