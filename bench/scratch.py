"""Scratch space in the temporary folder, named for its owner so a killed run's can be found.

A run killed with SIGKILL (or a machine that lost power) cannot remove its scratch folders.
Every scratch folder and file the harness makes is named `allocstudy-<kind>-<pid>-<random>`,
the pid its maker's, so the next run removes those whose maker is gone (`sweep_stale`); a
folder whose pid is alive, whoever now holds that pid, is left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

__all__ = ["scratch_dir", "sweep_stale"]

#: The kinds of scratch the harness makes (service.launcher names its log the same way).
KINDS = ("run", "loadgen", "calibrate", "control", "dask", "cell", "service")
_NAME = re.compile(rf"^allocstudy-(?:{'|'.join(KINDS)})-(\d+)-")


def scratch_dir(kind: str) -> Path:
    """A new scratch folder of this process's, in the temporary folder."""
    if kind not in KINDS:
        raise ValueError(f"unknown scratch kind {kind!r}")
    return Path(tempfile.mkdtemp(prefix=f"allocstudy-{kind}-{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process holds the pid: alive
        return True
    return True


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders and files whose maker has ended; the paths removed."""
    folder = Path(root or tempfile.gettempdir())
    removed = []
    for entry in folder.iterdir():
        found = _NAME.match(entry.name)
        if found is None or _alive(int(found.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
