"""The fragmentation engine: a live set that traffic builds up, with short- and long-lived buffers.

A real service's heap is not filled at start-up and then turned over evenly: it grows with the
traffic it serves (caches, sessions, pooled objects), much of what a request creates lives a
few seconds (request-scoped state, sessions with a time to live) and a few allocations live
on and pin the memory around them. This model reproduces that, per worker:

- `churn(now)`, once per /churn request, allocates `alloc_per_call` buffers of
  `min_bytes`..`max_bytes` (uniform). Each is long-lived with probability `long_lived_share`
  (a pin: it stays until evicted), else short-lived, with a time to live drawn uniformly from
  0..2*short_lifetime_s seconds (mean `short_lifetime_s`).
- The bound: before the new buffers exist, random long-lived survivors are evicted until the
  live set plus the new buffers fits in `live_buffers`, the way a cache at capacity drops
  entries (and, should the short-lived alone fill it, those closest to expiry go first).
- `expire(now)` frees the short-lived buffers whose time has come. The app calls it at the
  start of every request it serves (/churn, /json, /xml, /health), as a lazily expiring TTL
  cache does: what expires during a silent idle is freed only when the next request arrives.

So the live set starts at `start_buffers` (long-lived, allocated at worker start-up), grows by
about alloc_per_call * long_lived_share pins per call until it reaches its bound, and from then
on random pins are replaced. New allocations land in the holes the dead short-lived buffers
left, so pins spread over the whole heap: memory can go back to the kernel only where every
buffer of a region has died, which is what makes resident memory climb in steps and stay up.
When the load stops, the short-lived buffers expire (given requests to notice it), and what an
allocator does with that freed memory is its keep-or-return policy, on view.

Every new buffer is a `bytes` object filled with a non-zero byte, so the allocation goes through
malloc (more than 512 bytes: never pymalloc) and every one of its pages is written, hence
resident. A zero-filled buffer could come from calloc's untouched zero pages and would not be.
Sizes, classes, lifetimes and evictions come from one seeded stream per worker: the same seed,
worker index and call times give the same live set.
"""

from __future__ import annotations

import heapq
import itertools
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
    "short_pool",
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


def short_pool(config: ChurnConfig, calls_per_s: float) -> float:
    """Short-lived buffers alive at once under a steady load of `calls_per_s` churn calls."""
    return (
        calls_per_s
        * config.alloc_per_call
        * (1 - config.long_lived_share)
        * config.short_lifetime_s
    )


def calls_to_fill(config: ChurnConfig, calls_per_s: float) -> float:
    """Churn calls a worker needs, on average, until its live set reaches the bound.

    Room for pins = the bound less the start-up buffers and the short-lived pool in flight;
    pins arrive at alloc_per_call * long_lived_share a call. Infinite when no pin is ever made.
    """
    pins_per_call = config.alloc_per_call * config.long_lived_share
    room = max(0.0, config.live_buffers - config.start_buffers - short_pool(config, calls_per_s))
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
    """One worker's live set (not thread-safe: a worker churns on its event loop thread).

    Times are the caller's clock in seconds (the app passes time.monotonic()), so tests can
    drive the model with a clock of their own.
    """

    def __init__(self, config: ChurnConfig, rng: random.Random) -> None:
        self.config = config
        self._rng = rng
        self._long: list[bytes] = []
        # short-lived buffers as (time of death, sequence number, buffer): a min-heap
        self._short: list[tuple[float, int, bytes]] = []
        self._seq = itertools.count()
        self._bytes = 0
        self.calls = 0

    @property
    def count(self) -> int:
        """Buffers alive now."""
        return len(self._long) + len(self._short)

    @property
    def long_count(self) -> int:
        """Long-lived buffers (the pins) alive now."""
        return len(self._long)

    @property
    def short_count(self) -> int:
        """Short-lived buffers alive now."""
        return len(self._short)

    @property
    def nbytes(self) -> int:
        """Payload bytes of the live buffers (object headers not counted)."""
        return self._bytes

    def _size(self) -> int:
        return self._rng.randint(self.config.min_bytes, self.config.max_bytes)

    def _buffer(self, size: int) -> bytes:
        return _FILL[self._rng.randrange(1, 256)] * size

    def fill(self) -> None:
        """Allocate the start-up buffers (long-lived) up to `start_buffers`."""
        while len(self._long) < self.config.start_buffers:
            buffer = self._buffer(self._size())
            self._long.append(buffer)
            self._bytes += len(buffer)

    def expire(self, now: float) -> tuple[int, int]:
        """Free every short-lived buffer whose time to live ran out by `now`; (count, bytes)."""
        freed = freed_bytes = 0
        while self._short and self._short[0][0] <= now:
            _, _, buffer = heapq.heappop(self._short)
            freed += 1
            freed_bytes += len(buffer)
        self._bytes -= freed_bytes
        return freed, freed_bytes

    def _evict_one(self) -> int:
        """Drop one random long-lived buffer (swap with the last, pop), or failing that the
        short-lived one closest to expiry; its size."""
        if not self._long:
            return len(heapq.heappop(self._short)[2])
        index = self._rng.randrange(len(self._long))
        last = self._long.pop()
        victim = last
        if index < len(self._long):
            victim, self._long[index] = self._long[index], last
        return len(victim)

    def churn(self, now: float) -> ChurnResult:
        """One /churn request: expire, evict to make room, allocate; see the module doc."""
        config = self.config
        self.calls += 1
        freed, freed_bytes = self.expire(now)
        plan = []
        for _ in range(config.alloc_per_call):
            size = self._size()
            if self._rng.random() < config.long_lived_share:
                plan.append((size, math.inf))
            else:
                plan.append((size, self._rng.uniform(0.0, 2 * config.short_lifetime_s)))
        evicted = evicted_bytes = 0
        while self.count + len(plan) > config.live_buffers and self.count:
            evicted_bytes += self._evict_one()
            evicted += 1
        self._bytes -= evicted_bytes
        allocated_bytes = 0
        for size, ttl in plan:
            buffer = self._buffer(size)
            allocated_bytes += size
            if ttl == math.inf:
                self._long.append(buffer)
            else:
                heapq.heappush(self._short, (now + ttl, next(self._seq), buffer))
        self._bytes += allocated_bytes
        return ChurnResult(
            freed=freed + evicted,
            freed_bytes=freed_bytes + evicted_bytes,
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
        self._short.clear()
        self._bytes = 0
