"""What a family's readers hand back: a byte counter, and a record of internal statistics.

Every family module (glibc, jemalloc, tcmalloc, mimalloc, python) answers in these shapes,
so the heap count (service.allocators.heap) and the internal statistics
(service.allocators.stats) treat every allocator alike. Standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InternalStats", "MallocCounter"]


@dataclass(frozen=True)
class MallocCounter:
    """How this process's allocator counts the bytes in use: `read()` and what it reads."""

    source: str
    read: Callable[[], int | None]


@dataclass
class InternalStats:
    """An allocator's own statistics, read inside the process: bytes per field, where each
    came from, and why each field the allocator cannot give is absent (never a guess).

    `bytes` holds byte counts; `counts` holds other numbers the allocator reports (page
    faults, seconds, blocks), kept apart so no one adds them to bytes.
    """

    family: str
    bytes: dict[str, int] = field(default_factory=dict)
    counts: dict[str, float] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)

    def put(self, name: str, value: int, source: str) -> None:
        """One byte count and how it was read."""
        self.bytes[name] = int(value)
        self.source[name] = source

    def count(self, name: str, value: float, source: str) -> None:
        """One number that is not bytes, and how it was read."""
        self.counts[name] = value
        self.source[name] = source

    def lack(self, name: str, why: str) -> None:
        """A field this allocator (or its version) cannot give, and why."""
        self.absent[name] = why

    def record(self) -> dict[str, Any]:
        """The plain record of /stats (`internal`) and of a hosted app's stats."""
        return {
            "family": self.family,
            "bytes": dict(self.bytes),
            "counts": dict(self.counts),
            "source": dict(self.source),
            "absent": dict(self.absent),
        }
