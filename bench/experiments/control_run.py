"""Running the C++ control once: exactly the environment given, phases as they come, no strays.

The runner wraps `run_control_once` with a memory cgroup and a sampler (bench.experiments.control)
and chooses the allocator by the environment it passes (LD_PRELOAD); the program's command line
and its output are bench.experiments.control_program.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from bench.experiments.control_program import (
    ControlResult,
    ControlRunError,
    ControlTimeoutError,
    Share,
    control_command,
    is_number,
    parse_event,
)
from bench.run.signals import raise_if_interrupted

__all__ = ["run_control_once"]

_STDERR_TAIL = 8192  # bytes of the child's stderr kept for error messages


class _Tail:
    """The last bytes of a stream, drained on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream: Any) -> None:
        self._buf = bytearray()
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: Any) -> None:
        with contextlib.suppress(OSError, ValueError):  # the stream closed under us
            for chunk in iter(lambda: stream.read1(65536), b""):
                self._buf += chunk
                del self._buf[:-_STDERR_TAIL]

    def text(self, wait: float = 1.0) -> str:
        """What was kept, after waiting up to `wait` s for the end of the stream."""
        self._thread.join(wait)
        return self._buf.decode(errors="replace").strip()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole session (it leads its own), then reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    proc.wait()


def _lines(proc: subprocess.Popen[bytes], deadline: float) -> Iterator[str]:
    """Yield stdout lines as they arrive; raise TimeoutError when the deadline passes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    pending = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            raise_if_interrupted()
            if not sel.select(min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode(errors="replace")
    if pending.strip():
        yield pending.decode(errors="replace")


def run_control_once(
    binary: Path | str,
    *,
    env: Mapping[str, str],
    threads: int,
    live_bytes: int,
    min_bytes: int = 4096,
    max_bytes: int = 65536,
    seconds: float,
    idle_s: float,
    seed: int = 1,
    share: Share = "shard",
    warmup_s: float = 0.0,
    stats_log: Path | str | None = None,
    stats_every_s: float = 2.0,
    timeout: float,
    on_phase: Callable[[str, float], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    preexec: Callable[[], Any] | None = None,
) -> ControlResult:
    """Run the control once with exactly `env` and return what it reported.

    The caller owns the environment (LD_PRELOAD and allocator knobs): nothing is inherited.
    on_start(pid) is called as soon as the child exists (for procfs sampling); on_phase(name,
    t_s) as each phase begins, t_s on the program's clock. preexec runs in the child before
    exec (e.g. to join a memory cgroup, so every page it allocates is charged there). The
    child leads its own session; a timeout, an interrupt or any error kills that whole session,
    so no stray process survives. Raises ControlRunError (ControlTimeoutError on timeout) and
    ControlOutputError for output the program should never print.
    """
    cmd = control_command(
        binary,
        threads=threads,
        live_bytes=live_bytes,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        seconds=seconds,
        idle_s=idle_s,
        seed=seed,
        share=share,
        warmup_s=warmup_s,
        stats_log=stats_log,
        stats_every_s=stats_every_s,
    )
    if timeout <= 0:
        raise ValueError(f"timeout must be greater than 0, got {timeout!r}")
    deadline = time.monotonic() + timeout
    try:
        proc = subprocess.Popen(
            cmd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec,
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ControlRunError(f"cannot start the control {cmd[0]}: {exc}") from None
    stderr = _Tail(proc.stderr)
    phase_t: dict[str, float] = {}
    phase_mono: dict[str, float] = {}
    result: dict[str, Any] | None = None
    try:
        if on_start is not None:
            on_start(proc.pid)
        try:
            for line in _lines(proc, deadline):
                if not line.strip():
                    continue
                event = parse_event(line)
                if event["event"] == "result":
                    result = event
                    continue
                phase_t[event["phase"]] = float(event["t_s"])
                if is_number(event.get("mono_s")):
                    phase_mono[event["phase"]] = float(event["mono_s"])
                if on_phase is not None:
                    on_phase(event["phase"], float(event["t_s"]))
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired):
            _kill_group(proc)
            raise ControlTimeoutError(
                f"the control did not finish within {timeout:g} s and was killed "
                f"(last phase: {next(reversed(phase_t), 'none')}): {' '.join(cmd)}"
                + _stderr_note(stderr.text())
            ) from None
    finally:
        _kill_group(proc)  # a no-op after a clean exit; kills on errors and KeyboardInterrupt
        err_text = stderr.text()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if proc.returncode != 0:
        raise ControlRunError(
            f"the control exited with {_exit_text(proc.returncode)}: {' '.join(cmd)}"
            + _stderr_note(err_text)
        )
    if result is None:
        raise ControlRunError(
            f"the control exited without a result line: {' '.join(cmd)}" + _stderr_note(err_text)
        )
    return ControlResult.from_event(result, phase_t_s=phase_t, phase_mono_s=phase_mono)


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"exit code {returncode}"


def _stderr_note(text: str) -> str:
    return f"\nits stderr ends with:\n{text}" if text else ""
