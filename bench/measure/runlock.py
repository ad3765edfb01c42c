"""One measurement at a time on a machine: the run lock.

Two studies on one machine measure each other (on 2 cores, heavily), so `allocstudy run`
holds an exclusive lock for its whole length. A second run finds it taken and refuses to start,
naming the first one's pid and start time, unless told to wait for it. The lock is an flock on
a file every user can open (`/tmp/allocstudy-run.lock`, or `$ALLOCSTUDY_LOCK`): the kernel
drops it when its holder dies, however it dies, so a killed run never leaves a stale lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bench.errors import EXIT_BUSY, UserError

__all__ = ["MachineBusy", "held_by", "lock_path", "machine_lock"]


class MachineBusy(UserError):
    """Another run holds the machine."""

    exit_code = EXIT_BUSY


def lock_path() -> Path:
    """Where the lock lives: $ALLOCSTUDY_LOCK, else /tmp/allocstudy-run.lock (machine-wide)."""
    return Path(os.environ.get("ALLOCSTUDY_LOCK") or "/tmp/allocstudy-run.lock")


def held_by(path: Path | None = None) -> str | None:
    """Who holds the run lock at `path` (default lock_path()) now, or None when nobody does.

    Read from /proc/locks, never by taking the lock: a probe that held it even for an instant
    could turn away a run starting at that instant (exit 4).
    """
    path = path or lock_path()
    try:
        st = path.stat()
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    file_id = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in locks.splitlines():
        fields = line.split()
        # "1: FLOCK ADVISORY WRITE <pid> <maj:min:inode> 0 EOF"; "1: -> FLOCK ..." waits for it
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == file_id:
            return _holder(path)
    return None


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it ("pid 123, started 2026-...")."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "an unknown process"
    pid, _, started = text.partition(" ")
    return f"pid {pid}, started {started}" if pid.isdigit() else "an unknown process"


@contextlib.contextmanager
def machine_lock(
    *, wait: bool = False, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the machine for one run; MachineBusy when another run has it and `wait` is False.

    With `wait`, block until the other run ends (`on_wait` is told once who is waited for).
    """
    path = lock_path()
    old = os.umask(0)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)  # every user's runs share it
    except OSError as exc:
        raise UserError(f"cannot open the run lock {path}: {exc.strerror or exc}") from None
    finally:
        os.umask(old)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise MachineBusy(
                    f"another allocstudy run is measuring on this machine ({holder}); two "
                    "runs at once measure each other: let it finish, or pass --wait to start "
                    "when it has"
                ) from None
            if on_wait is not None:
                on_wait(f"waiting for the run that holds this machine ({holder}) to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        started = datetime.now(UTC).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {started}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
