"""The runner's side of the load generator: start its process, tell it t0, wait for its summary.

`start_loadgen` starts `python -m bench.load.generator` (bench.load.generator) on the stock
allocator, `LoadgenProcess.go` tells a generator waiting on stdin when t0 is, and
`wait_loadgen` returns its `LoadSummary` or raises LoadgenError. The process and its work
folder never outlive the experiment (`LoadgenProcess.close` on every way out).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from bench.load.config import LoadConfig, LoadgenError
from bench.load.progressfile import LoadProgress, read_progress
from bench.load.record import SUMMARY_VERSION, LoadSummary
from bench.scratch import scratch_dir
from service.process.childenv import die_with_parent, without_allocator_env

__all__ = ["LoadgenProcess", "start_loadgen", "wait_loadgen"]


@dataclass
class LoadgenProcess:
    """A started generator process, with the files it reads and writes."""

    proc: subprocess.Popen[bytes]
    config: LoadConfig
    out: Path
    workdir: Path  # config and stderr log; removed by wait_loadgen
    started: float = field(default_factory=time.monotonic)
    go_at: float | None = None

    @property
    def progress_path(self) -> Path | None:
        return self.config.progress_path

    def progress(self) -> LoadProgress | None:
        """The latest live progress (None before the first second or without a progress file)."""
        path = self.progress_path
        return read_progress(path) if path is not None else None

    def go(self, start_at: float) -> None:
        """Tell a generator started with `start_on_stdin` when t0 is (a time.monotonic())."""
        assert self.proc.stdin is not None, "the generator was not started with start_on_stdin"
        self.go_at = start_at
        self.proc.stdin.write(f"{start_at!r}\n".encode())
        self._close_stdin()

    def _close_stdin(self) -> None:
        # dropped from the Popen too, so that communicate() does not flush a closed pipe
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.proc.stdin = None

    def finish(self) -> None:
        """Ask the generator to end its schedule now and let the requests in flight complete
        (SIGUSR1): the end of an idle that ended once memory had settled."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        """Ask the generator to stop early; it still writes the rows it has.

        One still waiting for its go is told by the end of its stdin alone, and stops
        unstarted: a SIGTERM could reach it before it has set up its handlers (it may still
        be importing, on a busy machine), and kill it outright.
        """
        waiting = self.proc.stdin is not None  # started with start_on_stdin, never told to go
        self._close_stdin()
        if not waiting and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the generator if it still runs, reap it, and remove its work folder.

        The runner calls this on every way out (Ctrl-C included), so neither the process
        nor its files outlive the experiment.
        """
        self.stop()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "stderr.log").read_text(encoding="utf-8", errors="replace")
        return ""


def start_loadgen(
    config: LoadConfig, out: Path, *, python: str = sys.executable, progress: bool = True
) -> LoadgenProcess:
    """Start `python -m bench.load.generator` for `config`, writing its rows to `out`.

    The child gets the parent's environment without allocator settings (LD_PRELOAD,
    PYTHONMALLOC, MALLOC_CONF, GLIBC_TUNABLES, MIMALLOC_*, ...): the generator runs on the
    stock allocator whatever the service under test is given. With `progress` and no
    progress_path in the config, a progress file is kept in the process's work folder.
    """
    workdir = scratch_dir("loadgen")
    if progress and config.progress_path is None:
        config = config.model_copy(update={"progress_path": workdir / "progress.json"})
    config_path = workdir / "config.json"
    config_path.write_text(config.model_dump_json(indent=2), encoding="utf-8")
    env = without_allocator_env(os.environ)
    with open(workdir / "stderr.log", "wb") as stderr:
        proc = subprocess.Popen(
            [python, "-m", "bench.load.generator", "--config", str(config_path), "--out", str(out)],
            stdin=subprocess.PIPE if config.start_on_stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            preexec_fn=die_with_parent,  # never outlive a killed runner
        )
    return LoadgenProcess(proc, config, out, workdir)


def wait_loadgen(handle: LoadgenProcess, timeout: float | None = None) -> LoadSummary:
    """Wait for the generator to finish and return its summary; LoadgenError if it failed.

    The default timeout is the schedule plus the request timeout plus 30 s of start-up and
    writing; past it the generator is stopped (SIGTERM, then SIGKILL) and this raises.
    """
    config = handle.config
    if timeout is None:
        timeout = config.planned_s + config.timeout_s + 30.0
        start_at = config.start_at if config.start_at is not None else handle.go_at
        if start_at is not None:
            timeout += max(0.0, start_at - time.monotonic())
    try:
        try:
            stdout, _ = handle.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            handle.stop()
            try:
                handle.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                handle.proc.kill()
                handle.proc.communicate()
            raise LoadgenError(
                f"load generator still running after {timeout:.0f} s; stopped it"
            ) from None
        if handle.proc.returncode != 0:
            tail = handle.stderr_text().strip().splitlines()[-5:]
            raise LoadgenError(
                f"load generator exited with {handle.proc.returncode}: " + " | ".join(tail)
            )
        lines = [line for line in stdout.decode().splitlines() if line.startswith("{")]
        if not lines:
            raise LoadgenError("load generator printed no summary")
        try:
            summary = LoadSummary.model_validate_json(lines[-1])
        except ValidationError as exc:
            raise LoadgenError(f"load generator summary unreadable: {exc}") from None
        if summary.version != SUMMARY_VERSION:
            raise LoadgenError(
                f"load generator summary has version {summary.version}, this reads "
                f"{SUMMARY_VERSION}: is {handle.proc.args[0]} running another allocstudy?"
            )
        return summary
    finally:
        shutil.rmtree(handle.workdir, ignore_errors=True)
