"""The fragmentation engine: a bounded live set of mixed-size buffers, churned per request.

Each worker keeps `live_buffers` buffers of `min_bytes`..`max_bytes` (uniform) alive. One
churn frees `free_per_call` survivors chosen at random, then allocates replacements of random
sizes. The freed holes sit between survivors, so an allocator can return a region to the kernel
only once every buffer in it has been freed: this is what makes resident memory climb in steps.

Every new buffer is a `bytes` object filled with a non-zero byte, so the allocation goes through
malloc (more than 512 bytes: never pymalloc) and every one of its pages is written, hence
resident. A zero-filled buffer could come from calloc's untouched zero pages and would not be.

The live set never holds more than `live_buffers` buffers: a churn drops its victims before it
allocates their replacements. `fill()` creates the whole set; the app calls it once at worker
startup, so a worker is ready only with its live set in place and the warm-up phase already
runs on a full live set.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from service.config import ChurnConfig

__all__ = ["ChurnResult", "LiveSet", "worker_rng"]

# One bytes object per fill value: `_FILL[v] * n` is a single malloc and a memset over n bytes.
_FILL: tuple[bytes, ...] = tuple(bytes((v,)) for v in range(256))


def worker_rng(seed: int, worker_index: int) -> random.Random:
    """The random stream of one worker: the same seed and worker index give the same stream."""
    return random.Random(f"allocstudy-churn:{seed}:{worker_index}")


@dataclass(frozen=True)
class ChurnResult:
    """What one churn did, and the live set after it."""

    freed: int
    freed_bytes: int
    allocated: int
    allocated_bytes: int
    live_count: int
    live_bytes: int


class LiveSet:
    """A bounded set of live, fully resident buffers (one per worker; not thread-safe)."""

    def __init__(self, config: ChurnConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._buffers: list[bytes] = []
        self._bytes = 0
        self.calls = 0

    @property
    def count(self) -> int:
        return len(self._buffers)

    @property
    def nbytes(self) -> int:
        """Payload bytes of the live buffers (object headers not counted)."""
        return self._bytes

    def _new_buffer(self) -> bytes:
        size = self._rng.randint(self.config.min_bytes, self.config.max_bytes)
        return _FILL[self._rng.randrange(1, 256)] * size

    def fill(self) -> None:
        """Allocate buffers until the live set is full (nothing to do when it already is)."""
        while len(self._buffers) < self.config.live_buffers:
            buffer = self._new_buffer()
            self._buffers.append(buffer)
            self._bytes += len(buffer)

    def churn(self) -> ChurnResult:
        """Free `free_per_call` random survivors, then allocate as many replacements."""
        self.fill()
        victims = self._rng.sample(range(len(self._buffers)), self.config.free_per_call)
        freed_bytes = 0
        for index in victims:
            freed_bytes += len(self._buffers[index])
            # The last reference goes: the buffer is freed here, before any replacement exists.
            self._buffers[index] = b""
        allocated_bytes = 0
        for index in victims:
            buffer = self._new_buffer()
            self._buffers[index] = buffer
            allocated_bytes += len(buffer)
        self._bytes += allocated_bytes - freed_bytes
        self.calls += 1
        return ChurnResult(
            freed=len(victims),
            freed_bytes=freed_bytes,
            allocated=len(victims),
            allocated_bytes=allocated_bytes,
            live_count=len(self._buffers),
            live_bytes=self._bytes,
        )

    def clear(self) -> None:
        """Drop every buffer (worker shutdown)."""
        self._buffers.clear()
        self._bytes = 0
