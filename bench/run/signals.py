"""The run's signals, handled once for every executor: unwind on the first, hold the rest.

`sigterm_as_interrupt` turns SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt while a run (or
a cluster host's cell) measures, so every finally-block cleans up; `signals_held` ignores them
while an interrupted run stops its cells and saves, so a second Ctrl-C cannot cut that short.

A KeyboardInterrupt raised by the handler can be lost: Python prints and drops an exception
raised inside a fork hook (a signal that lands while `subprocess` starts a child with a
preexec_fn runs the handler in logging's after-fork hook) or a finaliser. So the handler also
notes the signal, and the waits a run spends its time in call `raise_if_interrupted`, which
raises the noted signal again: a lost Ctrl-C costs at most one wait's step, never the run.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["raise_if_interrupted", "sigterm_as_interrupt", "signals_held"]

#: The signal that asked the run to stop, once one has (None otherwise); cleared when the run
#: holds signals to stop, and when the handling ends.
_pending: list[int] = []


def raise_if_interrupted() -> None:
    """KeyboardInterrupt when a signal asked the run to stop and its own raise was lost."""
    if _pending:
        raise KeyboardInterrupt(signal.Signals(_pending[-1]).name)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C, so every finally-block cleans up.

    SIGINT is set here too, not left as inherited: a shell starts background jobs with SIGINT
    ignored, and Python keeps an ignored SIGINT ignored, so `kill -INT` would do nothing.
    An ignored SIGHUP stays ignored: that is `nohup`, asking the run to outlive its terminal.
    """

    def _raise(signum: int, _frame: object) -> None:
        _pending.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    wanted = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        wanted.append(signal.SIGHUP)
    _pending.clear()
    old = {s: signal.signal(s, _raise) for s in wanted}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _pending.clear()


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored while an interrupted run stops its cells and saves:
    a second Ctrl-C, or a supervisor signalling the whole process group as well as the run,
    would otherwise leave the run folder saying it still runs."""
    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in wanted}
    _pending.clear()  # the stop is under way: its own waits must not raise again
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
