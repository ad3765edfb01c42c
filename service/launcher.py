"""Start, check and stop the service the way a measured run needs it.

`start_service` runs `python -m service.supervisor` with the allocator's environment in a new
session (so the whole tree can be killed), optionally inside a cgroup (the child writes its own
pid into `cgroup.procs` before exec, so nothing it allocates is charged elsewhere) and pinned
to some CPUs. It returns once /health answers and every one of the N workers has answered
/stats, or raises `LaunchError` with one line that says why: the port is in use, the
interpreter died at startup, a worker failed to start (with the exception and the first lines
of its traceback), workers keep dying, or time ran out. A hosted app (the config's `app`) is
asked for readiness and stats on its harness paths (ServiceConfig.health_path, stats_path).

    service = start_service(python=sys.executable, workers=4, port=8000,
                            env=alloc.preload_env(), service_config=spec.service.model_dump())
    stats = service.stats_from_every_worker(timeout=10)   # {pid: /stats of that worker}
    service.worker_exits()                                # workers that died since the start
    service.restarts()                                    # workers recycled, and replacements
    service.app_errors(limit=4)                           # the first traceback the app logged
    service.stop()

The child's environment is this process's, minus inherited allocator settings (LD_PRELOAD,
PYTHONMALLOC, MALLOC_CONF, MIMALLOC_*, TCMALLOC_*, ...), plus the config's own `env` (a hosted
app's settings), plus `env`, plus the launcher's own variables (the service config, and
PYTHONMALLOC=malloc when the config asks for it). With `worker_log_dir`, each worker's own
output goes to a file there (worker-<slot>-<generation>.log, service.workerprocess); the
supervisor's log keeps the lines written for the launcher.
This module does not import bench: the runner and `allocstudy serve` both use it.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.config import CONFIG_ENV, ConfigError, ServiceConfig, config_to_env
from service.process.childenv import child_setup, without_allocator_env
from service.process.tree import children, process_tree
from service.recycling import Restart, parse_event, restarts
from service.reportlines import MESSAGE_PREFIX
from service.supervisor import EXIT_BIND, EXIT_WORKER_FAILED, HOST
from service.tracebacks import condensed, first_traceback
from service.workerexits import WorkerExit, parse_exit_line

__all__ = ["LaunchError", "ServiceProcess", "free_port", "start_service"]


# The line of a log that says why a Python process died: an exception or a fatal error.
_CAUSE = re.compile(r"^\s*(?:[A-Za-z_][\w.]*(?:Error|Exception)\b|Fatal Python error\b)")

_STOP_GRACE = 4.0  # seconds between SIGTERM and SIGKILL


class LaunchError(RuntimeError):
    """The service could not be started or checked; str() is one line for a terminal."""


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def _is_worker(pid: int) -> bool:
    # uvicorn's workers are multiprocessing "spawn" children: `python -c 'from
    # multiprocessing.spawn import spawn_main; ...' --multiprocessing-fork`. The supervisor's
    # other child, multiprocessing's resource tracker, is not a worker.
    return "--multiprocessing-fork" in _cmdline(pid)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes whose process group is `pgid`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick), for a service."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    """One GET on a fresh connection (closed after), so the kernel may pick another worker."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _tail(path: Path, lines: int = 6) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _why(lines: list[str]) -> str:
    """The log line that best says why a process died: its last exception, else the tail."""
    causes = [line.strip() for line in lines if _CAUSE.match(line)]
    return causes[-1] if causes else " | ".join(lines[-3:])


def _child_env(env: Mapping[str, str], config: ServiceConfig, config_json: str) -> dict[str, str]:
    child = without_allocator_env(os.environ)  # inherited settings go; `env` may set them again
    child.update(config.env)  # the app's settings (the config refuses allocator variables)
    child.update(env)
    child[CONFIG_ENV] = config_json
    if config.python_malloc == "malloc":
        child["PYTHONMALLOC"] = "malloc"
    child["PYTHONUNBUFFERED"] = "1"
    return child


@dataclass
class ServiceProcess:
    """A running service: the supervisor process and what it serves."""

    process: subprocess.Popen[bytes]
    port: int
    workers: int
    log_path: Path
    _own_log: bool = False
    #: Where each worker's own output goes (None: into the supervisor's log).
    worker_log_dir: Path | None = None
    #: Where a worker answers its stats and its health (ServiceConfig.stats_path, health_path).
    stats_path: str = "/stats"
    health_path: str = "/health"
    _seen_workers: set[int] = field(default_factory=set)

    @property
    def pid(self) -> int:
        """The supervisor's pid (also the process group and session of the whole tree)."""
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def poll(self) -> int | None:
        """The supervisor's exit code, or None while it runs."""
        return self.process.poll()

    def worker_pids(self) -> list[int]:
        """The uvicorn workers now running under the supervisor, sorted."""
        return sorted(pid for pid in children(self.pid) if _is_worker(pid))

    def tree_pids(self) -> list[int]:
        """The supervisor and all its descendants (workers, resource tracker), sorted."""
        return sorted(pid for pid in process_tree(self.pid) if os.path.exists(f"/proc/{pid}"))

    def log_tail(self, lines: int = 6) -> list[str]:
        """The last lines the supervisor and workers wrote (stdout and stderr)."""
        return _tail(self.log_path, lines)

    def _messages(self) -> list[str]:
        """The lines the supervisor and its workers wrote for us, prefix removed."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                return [
                    line.split(MESSAGE_PREFIX, 1)[1] for line in handle if MESSAGE_PREFIX in line
                ]
        except OSError:
            return []

    def _worker_logs(self) -> list[Path]:
        """The logs the workers' own output went to, oldest first (the supervisor's log when
        they have none of their own)."""
        if self.worker_log_dir is None:
            return [self.log_path]
        try:
            logs = list(self.worker_log_dir.glob("worker-*-*.log"))
        except OSError:
            return []
        return sorted(logs, key=lambda path: (path.stat().st_mtime, path.name))

    def app_errors(self, limit: int = 4) -> list[str]:
        """The first traceback the workers logged, condensed to at most `limit` lines: its
        exception line, then the frames in the app's own code (service.tracebacks); [] when
        none was logged. An app answering 5xx leaves one: uvicorn logs "Exception in ASGI
        application" with the traceback."""
        for path in self._worker_logs():
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if (found := first_traceback(text)) is not None:
                return condensed(found, limit)
        return []

    def _logged_cause(self) -> str:
        """The first traceback the workers logged, in one line ("" when none)."""
        if not (logged := self.app_errors(limit=4)):
            return ""
        cause, *frames = logged
        return cause + (f" (at {'; '.join(frames)})" if frames else "")

    def worker_exits(self) -> list[WorkerExit]:
        """The workers that died while the service ran, as the supervisor reported them.

        The supervisor replaces such a worker (its replacement starts with nothing), so the
        count of running workers alone does not show it; the supervisor's log does. A worker
        recycled after its limit of requests (service.recycling) is not a death: restarts().
        """
        found = (parse_exit_line(line) for line in self._messages())
        return [gone for gone in found if gone is not None]

    def restarts(self) -> list[Restart]:
        """The workers recycled after their limit of requests, each with its replacement."""
        return restarts(e for line in self._messages() if (e := parse_event(line)) is not None)

    def stats_from_every_worker(self, timeout: float = 10.0) -> dict[int, dict[str, Any]]:
        """The stats (/stats, or a hosted app's stats_path) of each of the N workers, by pid.

        The kernel hands each new connection to whichever worker accepts first, so this asks on
        fresh connections until every running worker has answered, or raises LaunchError when
        `timeout` seconds pass first.
        """
        deadline = time.monotonic() + timeout
        answers: dict[int, dict[str, Any]] = {}
        attempt = 0
        while True:
            running = set(self.worker_pids())
            if len(running) == self.workers and running <= answers.keys():
                return {pid: answers[pid] for pid in sorted(running)}
            if self.poll() is not None:
                raise LaunchError(self._exit_message())
            if time.monotonic() > deadline:
                missing = len(running - answers.keys()) if running else self.workers
                raise LaunchError(
                    f"{missing} of {self.workers} workers did not answer {self.stats_path} within "
                    f"{timeout:g} s ({len(running)} running)"
                )
            try:
                status, body = _get(self.port, self.stats_path, timeout=min(2.0, timeout))
                if status == 200:
                    stats = json.loads(body)
                    answers[int(stats["pid"])] = stats
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                time.sleep(0.05)
            attempt += 1
            if attempt % 8 == 0:
                time.sleep(0.01)  # let an idle worker win the next accept

    def _exit_message(self) -> str:
        code = self.process.returncode
        lines = self.log_tail(80)
        own = [line.split(MESSAGE_PREFIX, 1)[1].strip() for line in lines if MESSAGE_PREFIX in line]
        if code == EXIT_BIND and own:
            return own[-1]
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        elif code == EXIT_WORKER_FAILED:
            how = "stopped because a worker failed to start"
        else:
            how = f"exited with code {code}"
        detail = _why(lines)
        if code == EXIT_WORKER_FAILED:
            detail = self._logged_cause() or detail
        return f"the service {how} before it was ready" + (f": {detail}" if detail else "")

    def _wait_ready(self, ready_timeout: float) -> None:
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.poll() is not None:
                raise LaunchError(self._exit_message())
            workers = self.worker_pids()
            self._seen_workers.update(workers)
            if len(self._seen_workers) - len(self.restarts()) > self.workers:
                exits = self.worker_exits()
                died = f"the last, pid {exits[-1].pid}, {exits[-1].how()}" if exits else ""
                detail = self._logged_cause() or died or _why(self.log_tail(80))
                raise LaunchError(
                    f"workers keep dying at startup ({len(self._seen_workers)} started for "
                    f"{self.workers})" + (f": {detail}" if detail else "")
                )
            if len(workers) == self.workers:
                try:
                    status, _ = _get(self.port, self.health_path, timeout=2.0)
                except (OSError, http.client.HTTPException):
                    status = 0
                if status == 200:
                    break
            if time.monotonic() > deadline:
                raise LaunchError(
                    f"the service was not ready within {ready_timeout:g} s "
                    f"({len(workers)} of {self.workers} workers running)"
                )
            time.sleep(0.1)
        self.stats_from_every_worker(timeout=max(1.0, deadline - time.monotonic()))

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the supervisor, SIGKILL the whole group if it is not gone in time; reap.

        Returns only when no process of the service's group is left.
        """
        grace = min(_STOP_GRACE, max(0.0, timeout - 1.0))
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (a wedged supervisor, a worker that outlived it) goes.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        deadline = time.monotonic() + max(1.0, timeout - grace)
        while _group_members(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _check_interpreter(python: str) -> None:
    """Refuse a script posing as python (a pyenv shim would carry the preload into bash)."""
    try:
        with open(python, "rb") as handle:
            head = handle.read(2)
    except OSError as exc:
        raise LaunchError(f"cannot run {python}: {exc.strerror or exc}") from None
    if head == b"#!":
        raise LaunchError(
            f"{python} is a script, not an interpreter (a pyenv shim?): "
            "pass the real one, e.g. sys.executable"
        )


def start_service(
    *,
    python: str,
    workers: int,
    port: int,
    env: Mapping[str, str],
    service_config: Mapping[str, Any],
    cgroup_procs: Path | None = None,
    cpus: set[int] | None = None,
    preexec: Callable[[], None] | None = None,
    ready_timeout: float = 30.0,
    log_path: Path | None = None,
    on_spawn: Callable[[int], None] | None = None,
    worker_log_dir: Path | None = None,
) -> ServiceProcess:
    """Start the supervisor and its workers; return once all of them serve.

    `python` is the interpreter to run (a real one, never a pyenv shim); `env` carries the
    allocator's variables; `service_config` is the spec's service section (model_dump()).
    `cgroup_procs` is a cgroup.procs file the child writes its pid into before exec, `cpus`
    the CPUs it may run on; `preexec` is a further function run in the child before exec
    (after those two; plain system calls only). `log_path` receives the service's stdout and
    stderr (default: a temporary file removed by stop()). `on_spawn(pid)` is called with the
    supervisor's pid as soon as it exists, before the wait for readiness (a sampler that
    follows the process tree needs the root from the start). `worker_log_dir` (created if
    missing) receives each worker's own stdout and stderr, worker-<slot>-<generation>.log.
    Raises LaunchError, after stopping whatever started, when the service cannot be ready.
    """
    if workers < 1:
        raise LaunchError("the service needs at least one worker")
    if not 0 < port < 65536:
        raise LaunchError(f"port {port} is not in 1..65535")
    try:
        config = ServiceConfig.from_dict(service_config)
        config_json = config_to_env(service_config)
    except ConfigError as exc:
        raise LaunchError(f"bad service config: {exc}") from None
    if cpus is not None and not cpus:
        raise LaunchError("cpus is empty")
    _check_interpreter(python)
    own_log = log_path is None
    if log_path is None:
        handle, name = tempfile.mkstemp(prefix=f"allocstudy-service-{os.getpid()}-", suffix=".log")
        os.close(handle)
        log_path = Path(name)
    command = [python, "-m", "service.supervisor", "--port", str(port), "--workers", str(workers)]
    if worker_log_dir is not None:
        try:
            worker_log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LaunchError(f"cannot create {worker_log_dir}: {exc.strerror or exc}") from None
        command += ["--worker-log-dir", str(worker_log_dir.resolve())]
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(env, config, config_json),
                start_new_session=True,
                preexec_fn=child_setup(cgroup_procs, cpus, preexec),
            )
    except (OSError, subprocess.SubprocessError) as exc:
        if own_log:
            log_path.unlink(missing_ok=True)
        where = (
            f" (cgroup {cgroup_procs}, cpus {sorted(cpus or [])})" if cgroup_procs or cpus else ""
        )
        raise LaunchError(f"cannot start {python}{where}: {exc}") from None
    service = ServiceProcess(
        process,
        port,
        workers,
        log_path,
        _own_log=own_log,
        worker_log_dir=worker_log_dir,
        stats_path=config.stats_path,
        health_path=config.health_path,
    )
    try:
        if on_spawn is not None:
            on_spawn(process.pid)
        service._wait_ready(ready_timeout)
    except BaseException:
        service.stop()
        raise
    return service
