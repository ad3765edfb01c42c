"""A worker's death as the supervisor saw it: one line of its log, read back by the runner.

uvicorn's supervisor replaces a worker that died, and at the service's log level says nothing.
A measured run must not carry on as if nothing happened: the replacement starts with an empty
live set, and a worker killed by a signal (a crash in the allocator, the OOM killer) is the
allocator's failure to report. The supervisor writes each death as one line of its log
(`worker-exit {json}` after service.reportlines.MESSAGE_PREFIX); `ServiceProcess.worker_exits`
reads them back. The time is `time.monotonic()`, one clock for every process of the machine,
so the runner can put it on its own run clock. Only the standard library is imported.
"""

from __future__ import annotations

import json
import signal
from dataclasses import asdict, dataclass

__all__ = ["TAG", "WorkerExit", "parse_exit_line"]

#: The word that opens a worker-exit line (after the supervisor's message prefix).
TAG = "worker-exit"


@dataclass(frozen=True)
class WorkerExit:
    """One worker that stopped while the service ran (not at its stop)."""

    pid: int
    #: The process's exit code; negative when a signal killed it (-9: SIGKILL).
    exitcode: int | None
    #: time.monotonic() when the supervisor noticed (it looks every half second).
    noticed: float
    #: It still ran but stopped answering the supervisor's health check, which killed it.
    hung: bool = False

    @property
    def signal_name(self) -> str | None:
        """The name of the signal that killed it (SIGSEGV, SIGKILL...), None if it exited."""
        if self.exitcode is None or self.exitcode >= 0:
            return None
        try:
            return signal.Signals(-self.exitcode).name
        except ValueError:
            return f"signal {-self.exitcode}"

    def how(self) -> str:
        """What happened to it, for a sentence: `was killed by SIGSEGV`."""
        if self.hung:
            return "stopped answering the supervisor and was killed"
        if name := self.signal_name:
            return f"was killed by {name}"
        return f"exited with code {self.exitcode}"

    def line(self) -> str:
        """The log line (without the supervisor's prefix)."""
        return f"{TAG} {json.dumps(asdict(self), sort_keys=True)}"


def parse_exit_line(text: str) -> WorkerExit | None:
    """The WorkerExit a log line (prefix removed) holds, None for any other line."""
    text = text.strip()
    if not text.startswith(f"{TAG} "):
        return None
    try:
        data = json.loads(text[len(TAG) + 1 :])
        return WorkerExit(
            pid=int(data["pid"]),
            exitcode=None if data.get("exitcode") is None else int(data["exitcode"]),
            noticed=float(data["noticed"]),
            hung=bool(data.get("hung", False)),
        )
    except (ValueError, KeyError, TypeError):
        return None
