"""One uvicorn worker of the supervisor: its socket slot, its request limit, its reports.

uvicorn's `Process` starts a worker with a shared config and every socket; the supervisor
needs each worker on its own socket (service.supervisor), a limit of requests of its own
(service.recycling: the jittered draw, made by the supervisor so it is reproducible) and, on
a recycling service, a line in the log when the worker serves and when it retires. This
subclass carries the slot, the generation and the limit into the child (the object is pickled
into the spawned process), and serves with `RecyclingServer`, uvicorn's own `Server` with the
limit set: uvicorn then stops the worker gracefully at its limit (no new connections, the
requests in flight finish, the app's shutdown runs) and the process exits with code 0.

Given a log directory, the worker first moves its own stdout and stderr there
(`worker-<slot>-<generation>.log`): a user's app prints and logs what it likes, and a run must
keep it, per worker, apart from the supervisor's log. The report lines still go to the
supervisor's log, through a copy of the stderr the worker was started with.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import time
from functools import cached_property
from multiprocessing.connection import wait

from uvicorn.config import Config
from uvicorn.server import Server
from uvicorn.supervisors.multiprocess import Process

from service.allocators.serving import malloc_library
from service.recycling import Event, Ready, Retired, event_line
from service.reportlines import report_line, set_report_fd, worker_log_name

__all__ = ["RecyclingServer", "WorkerProcess"]


def _report(event: Event) -> None:
    """One line of the service's log (the worker's stderr is the supervisor's), in one write."""
    report_line(event_line(event))


class RecyclingServer(Server):
    """uvicorn's server with a request limit of its own (None: none), that says when it
    serves and, once stopped at its limit, that it retired and after how many requests."""

    def __init__(self, config: Config, limit: int | None) -> None:
        super().__init__(config)
        self.limit = limit
        #: time.monotonic() when the limit stopped it (None: not stopped by its limit)
        self.retired_at: float | None = None

    @cached_property
    def limit_max_requests(self) -> int | None:  # type: ignore[override]
        return self.limit

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.limit is not None and self.started:
            try:
                library: str | None = malloc_library()
            except OSError:
                library = None
            _report(Ready(os.getpid(), time.monotonic(), library))

    async def on_tick(self, counter: int) -> bool:
        stop = await super().on_tick(counter)
        if stop and not self.should_exit and self.retired_at is None:
            self.retired_at = time.monotonic()  # the limit, not a signal, stops it
        return stop


class WorkerProcess(Process):
    """A worker serving one socket slot, the `generation`-th worker of that slot (0 first)."""

    def __init__(
        self,
        config: Config,
        sockets: list[socket.socket],
        *,
        slot: int,
        generation: int = 0,
        limit: int | None = None,
        log_dir: str | None = None,
    ) -> None:
        self.slot = slot
        self.generation = generation
        self.limit = limit
        self.log_dir = log_dir
        super().__init__(config, sockets)

    @property
    def server(self) -> Server:
        if self._server is None:
            self._server = RecyclingServer(self.config, self.limit)
        return self._server

    def answers(self, timeout: float) -> bool:
        """Whether it answers the supervisor's health check within `timeout` seconds.

        uvicorn's own check waits out the whole timeout when the worker exits between the
        check and its answer (the supervisor holds both ends of the pipe, so no end-of-file
        comes); a recycled worker exits at its own pace, and that wait would leave its socket
        unserved for seconds. This one also returns, False, as soon as the process ends.
        """
        try:
            self.parent_conn.send(b"ping")
            ready = wait([self.parent_conn, self.process.sentinel], timeout)
            if self.parent_conn in ready:
                self.parent_conn.recv()
                return True
        except (OSError, EOFError, pickle.UnpicklingError):
            pass
        return False

    @property
    def recycled(self) -> bool:
        """In the supervisor, after the exit: it had a limit and ended with code 0.

        A signal (negative code), a failed start-up (code 3) or an exception (code 1) is a
        death; only uvicorn's stop at the limit ends a worker with 0 while it is wanted.
        """
        return self.limit is not None and self.exitcode == 0

    def _own_log(self) -> None:
        """In the child: stdout and stderr to this worker's log, report lines unchanged."""
        if self.log_dir is None:
            return
        path = os.path.join(self.log_dir, worker_log_name(self.slot, self.generation))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        set_report_fd(os.dup(2))  # the supervisor's log (not inherited by anything started)
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)

    def target(self, sockets: list[socket.socket] | None = None) -> None:  # pragma: no cover
        self._own_log()
        super().target(sockets)  # returns only after a graceful stop (a signal re-raises)
        server = self.server
        if isinstance(server, RecyclingServer) and server.retired_at is not None:
            limit = server.limit if server.limit is not None else 0
            _report(
                Retired(os.getpid(), server.server_state.total_requests, limit, server.retired_at)
            )
