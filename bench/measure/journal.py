"""The journal of what a run changed on the machine, so that a run killed outright is undone.

A run turns transparent huge pages off and creates memory cgroups; it puts both back when it
ends. A run killed with SIGKILL, a lost terminal or the OOM killer cannot, and the next run
would then record the changed setting as the machine's own. So before changing a setting the
runner writes it here (file, original value, run pid, boot id), and before creating a cgroup
it writes its path; it crosses both out when it has put them back. Any later `allocstudy run`
or `allocstudy doctor` that finds an entry whose run is gone restores the original value or
removes the cgroup first, and says so in one line. Entries from an earlier boot are dropped
(a reboot resets the settings, and a pid means nothing across boots).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["add", "journal_path", "recover", "remove", "remove_cgroup"]


def journal_path() -> Path:
    """$ALLOCSTUDY_JOURNAL, else /var/tmp/allocstudy-journal.json (machine-wide, as the
    settings it guards are)."""
    return Path(os.environ.get("ALLOCSTUDY_JOURNAL") or "/var/tmp/allocstudy-journal.json")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def _entries() -> Iterator[list[dict[str, Any]]]:
    """The journal's entries, locked, read and written back whole."""
    path = journal_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as fh:
            text = fh.read()
            try:
                entries = json.loads(text) if text.strip() else []
            except ValueError:
                entries = []  # a torn write of a killed run: nothing trustworthy in it
            if not isinstance(entries, list):
                entries = []
            yield entries
            fh.seek(0)
            fh.truncate()
            fh.write(json.dumps(entries, indent=1))
    finally:
        os.close(fd)


def add(kind: str, target: str, original: str | None = None) -> None:
    """Note, before changing it, that this process changes `target` (a setting's file, or a
    cgroup folder it creates)."""
    with _entries() as entries:
        entries.append(
            {
                "kind": kind,
                "target": target,
                "original": original,
                "pid": os.getpid(),
                "boot_id": _boot_id(),
                "time": time.time(),
            }
        )


def remove(kind: str, target: str) -> None:
    """Cross out this process's entry for `target`: it has been put back."""
    with _entries() as entries:
        entries[:] = [
            e
            for e in entries
            if not (
                e.get("kind") == kind and e.get("target") == target and e.get("pid") == os.getpid()
            )
        ]


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _undo(entry: dict[str, Any]) -> str:
    """Put one thing back; the line that says what was done."""
    target, pid = Path(str(entry.get("target"))), entry.get("pid")
    if entry.get("kind") == "setting":
        target.write_text(str(entry.get("original")))
        return f"restored {target} to {entry.get('original')!r}, left changed by run pid {pid}"
    if entry.get("kind") == "cgroup":
        remove_cgroup(target)
        return f"removed the cgroup {target}, left by run pid {pid}"
    return f"dropped an unknown journal entry of run pid {pid}"


def remove_cgroup(path: Path, timeout: float = 5.0) -> None:
    """Kill every task in a cgroup, then remove it, retrying while the tasks exit (a cgroup
    with tasks cannot be removed); OSError when it is still busy after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def recover() -> list[str]:
    """Undo what runs that are gone left changed; one line for each thing put back."""
    said: list[str] = []
    boot = _boot_id()
    with _entries() as entries:
        keep = []
        for entry in entries:
            if entry.get("boot_id") != boot:
                continue  # an earlier boot: the machine reset it
            if _alive(entry.get("pid")) and entry.get("pid") != os.getpid():
                keep.append(entry)  # its run still runs (and will put it back)
                continue
            try:
                said.append(_undo(entry))
            except OSError as exc:
                said.append(f"could not put back {entry.get('target')}: {exc.strerror or exc}")
                keep.append(entry)
        entries[:] = keep
    return said
