"""The memory sampler: anonymous bytes of a memory group on an absolute, monotonic schedule.

It runs as a thread in the runner's process (pinned away from the measured program with the
rest of the harness): one read of memory.stat a sample costs microseconds, far less than a
process of its own would. Sample k is due at origin + k * interval; a late sample records how
late it was, and the sampler measures its own CPU time so its overhead is a reported number.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Sample", "Sampler"]


@dataclass(frozen=True)
class Sample:
    t_s: float  # seconds since origin
    phase: str
    anon_bytes: int
    late_s: float


@dataclass
class Sampler:
    """Samples `read()` every `interval_s` from `origin` until stopped.

    `phase` is read at each sample, so the runner moves phases by assigning it.
    """

    read: Callable[[], int]
    interval_s: float
    origin: float
    phase: str = "start"
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Sampler:
        self._thread = threading.Thread(target=self._loop, name="allocstudy-sampler", daemon=True)
        self._thread.start()
        return self

    def sample_now(self, phase: str | None = None) -> Sample | None:
        """Take one extra sample at once (e.g. the last one after the forced reclaim)."""
        now = time.monotonic()
        return self._take(now, now, phase or self.phase)

    def _take(self, due: float, now: float, phase: str) -> Sample | None:
        try:
            value = self.read()
        except (OSError, KeyError, ValueError) as exc:
            self.errors.append(f"{now - self.origin:.3f}s: {exc}")
            return None
        sample = Sample(round(now - self.origin, 6), phase, value, round(max(0.0, now - due), 6))
        self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        cpu0 = time.thread_time()
        # started after origin: go on from the current slot if barely late, else the next
        elapsed = max(0.0, time.monotonic() - self.origin)
        k = math.floor(elapsed / self.interval_s)
        if elapsed - k * self.interval_s > 0.1 * self.interval_s:
            k += 1
        while not self._stop.is_set():
            due = self.origin + k * self.interval_s
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            now = time.monotonic()
            self._take(due, now, self.phase)
            # skip slots already missed rather than bursting to catch up
            k = max(k + 1, int((now - self.origin) / self.interval_s) + 1)
        self.cpu_s = time.thread_time() - cpu0

    def stop(self) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.samples

    @property
    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None
