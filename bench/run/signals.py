"""The run's signals, handled once for every executor: unwind on the first, hold the rest.

`sigterm_as_interrupt` turns SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt while a run (or
a cluster host's cell) measures, so every finally-block cleans up; `signals_held` ignores them
while an interrupted run stops its cells and saves, so a second Ctrl-C cannot cut that short.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["sigterm_as_interrupt", "signals_held"]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C, so every finally-block cleans up.

    SIGINT is set here too, not left as inherited: a shell starts background jobs with SIGINT
    ignored, and Python keeps an ignored SIGINT ignored, so `kill -INT` would do nothing.
    An ignored SIGHUP stays ignored: that is `nohup`, asking the run to outlive its terminal.
    """

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    wanted = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        wanted.append(signal.SIGHUP)
    old = {s: signal.signal(s, _raise) for s in wanted}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored while an interrupted run stops its cells and saves:
    a second Ctrl-C, or a supervisor signalling the whole process group as well as the run,
    would otherwise leave the run folder saying it still runs."""
    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in wanted}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
