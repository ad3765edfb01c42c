"""The service's supervisor process: N uvicorn workers, each on its own listening socket.

Run as `python -m service.supervisor --port P --workers N` (service.launcher does this with the
allocator preloaded). Stock `uvicorn --workers N` creates its shared socket without TCP_NODELAY,
which adds about 40 ms to every keep-alive request (uvicorn issue 3149), and lets whichever
worker is awake accept the waiting connections, so keep-alive load lands unevenly. This binds
one socket per worker with SO_REUSEPORT and TCP_NODELAY (accepted connections inherit it), and
runs uvicorn's own `Multiprocess` supervisor with worker i serving socket i.

The service listens on 127.0.0.1 only and bounds a graceful shutdown to two seconds. It
recycles workers only when its config asks (`max_requests`: service.recycling; off by default,
since recycling hides the fragmentation being measured); a recycled worker exits with code 0
and is replaced on its socket, written down as a recycle. SIGINT or SIGTERM stops the
workers, then this process. A worker that dies while the service runs is replaced, as uvicorn
does (on its own socket), and written down first: one line of the log (service.workerexits)
with its pid, how it ended and when, which the runner reads back.

The app is the synthetic one (service.app) unless the config names a user's app, then the
hosted one (service.hosted). With `--worker-log-dir DIR` each worker writes its own stdout and
stderr (the app's output, uvicorn's error log) to DIR/worker-<slot>-<generation>.log, and only
the lines for the launcher (MESSAGE_PREFIX) still reach this process's log.

Exit codes: 0 after a signal; 4 when the port cannot be bound (one line on stderr); 5 when a
worker failed to start (its traceback is in the log above).
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from service.recycling import Recycled, event_line, request_limit
from service.reportlines import MESSAGE_PREFIX, report_line
from service.workerexits import WorkerExit

if TYPE_CHECKING:
    from uvicorn.config import Config

__all__ = [
    "EXIT_BIND",
    "EXIT_WORKER_FAILED",
    "HOST",
    "BindError",
    "listening_socket",
    "main",
    "worker_sockets",
    "uvicorn_config",
]

HOST = "127.0.0.1"
APP = "service.app:create_app"
#: The factory serving a user's app (the config's `app`).
HOSTED_APP = "service.hosted:create_app"
EXIT_BIND = 4
EXIT_WORKER_FAILED = 5


class BindError(OSError):
    """The service's port cannot be bound; str() says why in one line."""


def _bind_failure(port: int) -> str:
    """Why the port could not be bound, in one line (uvicorn only says it exited)."""
    probe = socket.socket()
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return f"port {port} on {HOST} is already in use"
        return f"cannot listen on {HOST}:{port}: {exc.strerror or exc}"
    finally:
        probe.close()
    return f"cannot listen on {HOST}:{port}"


def uvicorn_config(
    *, port: int, workers: int, log_level: str = "warning", app: str = APP
) -> Config:
    """uvicorn's settings for the service: app factory (`app`: APP or HOSTED_APP), 127.0.0.1,
    no request limit (each worker's own, when recycling, is set by service.workerprocess)."""
    from uvicorn.config import Config

    return Config(
        app,
        factory=True,
        host=HOST,
        port=port,
        workers=workers,
        lifespan="on",
        access_log=False,
        log_level=log_level,
        limit_max_requests=None,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=60,  # keep the generator's warm connections through a slow warm-up
    )


def listening_socket(config: Config) -> socket.socket:
    """The shared listening socket of `config`, with TCP_NODELAY (accepted sockets inherit it)."""
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn logs the OSError and exits; say which problem it was
        raise BindError(_bind_failure(config.port)) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def worker_sockets(config: Config, workers: int) -> list[socket.socket]:
    """One listening socket per worker on the same port, joined with SO_REUSEPORT.

    With one shared socket, whichever worker is awake accepts the waiting connections, and on
    a busy core one worker can take most of them: keep-alive then pins most of the load, and
    most of the churn, on it. With a socket per worker the kernel spreads new connections over
    the workers by a hash of the connection's addresses, whoever is running.
    A port bound by anyone else is refused first: SO_REUSEPORT alone would share it silently.
    """
    probe = listening_socket(config)  # fails with BindError when the port is taken
    probe.close()
    socks = []
    try:
        for _ in range(workers):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.bind((HOST, config.port))
            sock.listen(config.backlog)
            sock.set_inheritable(True)
            socks.append(sock)
    except OSError as exc:
        for sock in socks:
            sock.close()
        raise BindError(f"cannot listen on {HOST}:{config.port}: {exc.strerror or exc}") from None
    return socks


def _report_exit(gone: WorkerExit) -> None:
    """Write a worker's death as one line of the log, for the launcher to read back."""
    report_line(gone.line())


def _supervisor(
    config: Config,
    socks: list[socket.socket],
    recycling: tuple[int | None, int, int],
    log_dir: str | None = None,
) -> Any:
    """uvicorn's Multiprocess, with worker i serving socks[i] alone, reporting worker deaths.

    `recycling` is (max_requests, max_requests_jitter, seed): each worker gets its own limit
    (service.recycling.request_limit), a replacement the next draw of its slot. `log_dir`:
    where each worker writes its own output (None: into this process's log).
    """
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors.multiprocess import Multiprocess

    from service.workerprocess import WorkerProcess

    max_requests, jitter, seed = recycling

    def start(slot: int, generation: int) -> WorkerProcess:
        limit = request_limit(max_requests, jitter, seed=seed, slot=slot, generation=generation)
        process = WorkerProcess(
            config,
            [socks[slot]],
            slot=slot,
            generation=generation,
            limit=limit,
            log_dir=log_dir,
        )
        process.start()
        return process

    class PerWorkerSockets(Multiprocess):
        def init_processes(self) -> None:
            self.processes.extend(start(slot, 0) for slot in range(len(socks)))

        def keep_subprocess_alive(self) -> None:
            """uvicorn's check (a dead or hung worker is replaced, on its own socket), each
            loss reported first: a recycle as such, anything else as a death."""
            if self.should_exit.is_set():
                return  # stopping: the workers end because they were told to
            noticed = time.monotonic()
            timeout = self.config.timeout_worker_healthcheck
            for idx, old in enumerate(list(self.processes)):
                if old.process.is_alive() and old.answers(timeout):
                    continue
                alive = old.process.is_alive()  # reaps a dead one: exitcode is set
                old.kill()
                old.join()
                # Hung only if our SIGKILL ended it: a worker dying of its own signal (SIGSEGV)
                # can still count as alive when it fails to answer, then die before the kill.
                hung = alive and old.exitcode == -signal.SIGKILL
                if old.exitcode == STARTUP_FAILURE:
                    _report_exit(WorkerExit(old.pid, old.exitcode, noticed))
                    self.should_exit.set()  # broken app or socket: every restart would fail
                    return
                new = start(old.slot, old.generation + 1)
                self.processes[idx] = new
                if old.recycled:
                    report_line(event_line(Recycled(old.pid, new.pid, old.exitcode, noticed)))
                else:
                    _report_exit(WorkerExit(old.pid, old.exitcode, noticed, hung=hung))

    return PerWorkerSockets(config, sockets=socks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.supervisor", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--worker-log-dir", default=None)
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536 or args.workers < 1:
        print(f"{MESSAGE_PREFIX} need a port in 1..65535 and at least one worker", file=sys.stderr)
        return 2

    from uvicorn.config import STARTUP_FAILURE

    from service.config import config_from_env

    service = config_from_env()  # the launcher checked it before starting this process
    config = uvicorn_config(
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        app=HOSTED_APP if service.hosted else APP,
    )
    try:
        socks = worker_sockets(config, args.workers)
    except BindError as exc:
        print(f"{MESSAGE_PREFIX} {exc}", file=sys.stderr)
        return EXIT_BIND

    recycling = (service.max_requests, service.max_requests_jitter, service.churn.seed)
    supervisor = _supervisor(config, socks, recycling, args.worker_log_dir)
    supervisor.run()
    for sock in socks:
        sock.close()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        print(f"{MESSAGE_PREFIX} a worker failed to start (see the log above)", file=sys.stderr)
        return EXIT_WORKER_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
