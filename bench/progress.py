"""Live progress of a run: a rich status line on a terminal, plain lines elsewhere.

The runner calls `update` often and cheaply; the display decides how much to show. Plain
mode prints a line on every phase change and at most every 10 s otherwise, so logs of CI
runs stay readable.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Progress"]


@dataclass
class Progress:
    """What a run is doing now: allocator, phase, time left, anon MB, rate and p99 so far."""

    total: int
    interactive: bool = field(default_factory=lambda: sys.stderr.isatty())
    _live: Any = None
    _last_line: float = 0.0
    _last_key: tuple[str, str] = ("", "")
    index: int = 0
    #: estimated seconds of each step (allocator and round) in order, when the runner knows
    #: them (bench.experiments.plan): the whole run's time left is counted from these
    steps_s: list[float] = field(default_factory=list)
    _step: int = 0
    _step_started: float = 0.0

    def run_left_s(self, now: float) -> float | None:
        """The whole run's estimated time left: what is left of this step, and every step
        after it. None without estimates. A step that overruns its estimate counts as done."""
        if not self.steps_s or not 1 <= self.index <= len(self.steps_s):
            return None
        if self.index != self._step:
            self._step, self._step_started = self.index, now
        here = max(0.0, self.steps_s[self.index - 1] - (now - self._step_started))
        return here + sum(self.steps_s[self.index :])

    def __enter__(self) -> Progress:
        if self.interactive:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                "", console=Console(stderr=True), refresh_per_second=2, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
            self._live = None

    def say(self, text: str) -> None:
        """A line that stays (allocator started, finished, failed)."""
        if self._live is not None:
            self._live.console.print(text, highlight=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def update(
        self,
        *,
        allocator: str,
        experiment: str,
        phase: str,
        left_s: float | None,
        anon_bytes: int | None,
        rate: float | None = None,
        p99_ms: float | None = None,
    ) -> None:
        parts = [f"[{self.index}/{self.total}] {allocator} {experiment}: {phase}"]
        if left_s is not None:
            parts.append(f"{max(0.0, left_s):.0f} s left")
        if anon_bytes is not None:
            parts.append(f"anon {anon_bytes / 1e6:.0f} MB")
        if rate is not None:
            parts.append(f"{rate:.0f} req/s")
        if p99_ms is not None:
            parts.append(f"p99 {p99_ms:.1f} ms")
        now = time.monotonic()
        if (run_left := self.run_left_s(now)) is not None:
            parts.append(f"run: about {_clock(run_left)} left")
        line = ", ".join(parts)
        if self._live is not None:
            self._live.update(line)
            return
        key = (allocator, phase)
        if key != self._last_key or now - self._last_line >= 10:
            self._last_key, self._last_line = key, now
            print(line, file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    """A countdown as the eye reads it: 1:05:09, 12:04, 0:42."""
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
