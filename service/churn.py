"""The fragmentation engine: a live set that traffic builds up, with short- and long-lived buffers.

A real service's heap is not filled at start-up and then turned over evenly: it grows with the
traffic it serves (caches, sessions, pooled objects), most of what a request allocates dies
within a few requests, and a few allocations live on and pin the memory around them. This
model reproduces that, per worker, one `churn()` per /churn request:

1. Expire: the short-lived buffers whose lifetime (counted in this worker's churn calls) ran
   out are freed, leaving holes between the buffers that survive.
2. Allocate `alloc_per_call` new buffers of `min_bytes`..`max_bytes` (uniform). Each is
   long-lived with probability `long_lived_share` (a pin: it stays until evicted), else
   short-lived, with a lifetime drawn uniformly from 1..2*short_lifetime_calls-1 calls (mean
   `short_lifetime_calls`).
3. Bound: before the new buffers exist, random long-lived survivors are evicted until the live
   set plus the new buffers fits in `live_buffers`, the way a cache at capacity drops entries.

So the live set starts at `initial_buffers` (long-lived, allocated at worker start-up), grows by
about alloc_per_call * long_lived_share pins per call until it reaches its bound, and from then
on random pins are replaced. New allocations land in the holes the dead short-lived buffers
left, so pins spread over the whole heap: memory can go back to the kernel only where every
buffer of a region has died, which is what makes resident memory climb in steps and stay up.

Every new buffer is a `bytes` object filled with a non-zero byte, so the allocation goes through
malloc (more than 512 bytes: never pymalloc) and every one of its pages is written, hence
resident. A zero-filled buffer could come from calloc's untouched zero pages and would not be.
Everything is drawn from one seeded stream per worker: the same seed, worker index and call
sequence give the same sizes, classes, lifetimes and evictions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from service.config import ChurnConfig

__all__ = [
    "LIVE_BYTES_HEADER",
    "WORKER_HEADER",
    "ChurnResult",
    "LiveSet",
    "calls_to_fill",
    "worker_rng",
]

#: Response headers of /churn: the answering worker's pid and its live payload after the call.
#: The load generator records both per request, which gives the live payload over time.
WORKER_HEADER = "X-Worker-Pid"
LIVE_BYTES_HEADER = "X-Live-Bytes"

# One bytes object per fill value: `_FILL[v] * n` is a single malloc and a memset over n bytes.
_FILL: tuple[bytes, ...] = tuple(bytes((v,)) for v in range(256))


def worker_rng(seed: int, worker_index: int) -> random.Random:
    """The random stream of one worker: the same seed and worker index give the same stream."""
    return random.Random(f"allocstudy-churn:{seed}:{worker_index}")


def calls_to_fill(config: ChurnConfig) -> float:
    """Churn calls a worker needs, on average, until its live set reaches the bound.

    Room for pins = the bound less the start-up buffers and the short-lived pool in flight
    (alloc_per_call short buffers a call, living short_lifetime_calls calls on average); pins
    arrive at alloc_per_call * long_lived_share a call. Infinite when no pin is ever made.
    """
    pins_per_call = config.alloc_per_call * config.long_lived_share
    short_pool = config.alloc_per_call * (1 - config.long_lived_share) * config.short_lifetime_calls
    room = max(0.0, config.live_buffers - config.start_buffers - short_pool)
    if room == 0:
        return 0.0
    return room / pins_per_call if pins_per_call > 0 else math.inf


@dataclass(frozen=True)
class ChurnResult:
    """What one churn did, and the live set after it."""

    freed: int
    freed_bytes: int
    allocated: int
    allocated_bytes: int
    live_count: int
    live_bytes: int
    long_count: int
    evicted: int


class LiveSet:
    """One worker's live set (not thread-safe: a worker churns on its event loop thread)."""

    def __init__(self, config: ChurnConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._long: list[bytes] = []
        # short-lived buffers by the churn call at which they die
        self._dying: dict[int, list[bytes]] = {}
        self._short_count = 0
        self._bytes = 0
        self.calls = 0

    @property
    def count(self) -> int:
        """Buffers alive now."""
        return len(self._long) + self._short_count

    @property
    def long_count(self) -> int:
        """Long-lived buffers (the pins) alive now."""
        return len(self._long)

    @property
    def short_count(self) -> int:
        """Short-lived buffers alive now."""
        return self._short_count

    @property
    def nbytes(self) -> int:
        """Payload bytes of the live buffers (object headers not counted)."""
        return self._bytes

    def _size(self) -> int:
        return self._rng.randint(self.config.min_bytes, self.config.max_bytes)

    def _buffer(self, size: int) -> bytes:
        return _FILL[self._rng.randrange(1, 256)] * size

    def fill(self) -> None:
        """Allocate the start-up buffers (long-lived) up to `initial_buffers`."""
        while len(self._long) < self.config.start_buffers:
            buffer = self._buffer(self._size())
            self._long.append(buffer)
            self._bytes += len(buffer)

    def _evict_one(self) -> int:
        """Drop one random long-lived buffer (swap with the last, pop); its size."""
        index = self._rng.randrange(len(self._long))
        last = self._long.pop()
        victim = last
        if index < len(self._long):
            victim, self._long[index] = self._long[index], last
        return len(victim)

    def churn(self) -> ChurnResult:
        """One request's worth: expire, evict to make room, allocate; see the module doc."""
        config = self.config
        self.calls += 1
        freed = freed_bytes = 0
        expired = self._dying.pop(self.calls, None)
        if expired is not None:
            freed = len(expired)
            freed_bytes = sum(len(b) for b in expired)
            self._short_count -= freed
            expired.clear()  # the last references go: freed here, before any new buffer
        plan = []
        for _ in range(config.alloc_per_call):
            size = self._size()
            if self._rng.random() < config.long_lived_share:
                plan.append((size, 0))
            else:
                plan.append((size, self._rng.randint(1, 2 * config.short_lifetime_calls - 1)))
        evicted = 0
        while self.count + len(plan) > config.live_buffers and self._long:
            freed_bytes += self._evict_one()
            evicted += 1
        freed += evicted
        allocated_bytes = 0
        for size, lifetime in plan:
            buffer = self._buffer(size)
            allocated_bytes += size
            if lifetime == 0:
                self._long.append(buffer)
            else:
                self._dying.setdefault(self.calls + lifetime, []).append(buffer)
                self._short_count += 1
        self._bytes += allocated_bytes - freed_bytes
        return ChurnResult(
            freed=freed,
            freed_bytes=freed_bytes,
            allocated=len(plan),
            allocated_bytes=allocated_bytes,
            live_count=self.count,
            live_bytes=self._bytes,
            long_count=len(self._long),
            evicted=evicted,
        )

    def clear(self) -> None:
        """Drop every buffer (worker shutdown)."""
        self._long.clear()
        self._dying.clear()
        self._short_count = 0
        self._bytes = 0
