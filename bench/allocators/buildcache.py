"""The one build cache: where every compiled thing is kept, how it is named, who may build it.

Two things are built here and reused while their inputs are unchanged: allocators from source
(cmake, bench.allocators.sourcebuild) and the C++ control (g++, bench.experiments.control_build).
Both live under one root, `$ALLOCSTUDY_CACHE` (default `$XDG_CACHE_HOME/allocstudy`, else
`~/.cache/allocstudy`), one folder per kind (`builds/`, `control/`); both name an entry by
`build_key` of everything that determines the output (the source, the flags, the tools'
versions, read by `tool_version`), and both build under `locked`, so two processes wanting the
same entry build it once and a reader never sees half of it. `compilers` is what
`allocstudy doctor` reports of the same tools.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CACHE_ENV",
    "ToolVersion",
    "build_key",
    "cache_dir",
    "cache_root",
    "compilers",
    "locked",
    "tool_version",
]

#: The variable that moves the whole cache (a CI cache folder, a bigger disk).
CACHE_ENV = "ALLOCSTUDY_CACHE"


def cache_root() -> Path:
    """Where allocstudy keeps builds: $ALLOCSTUDY_CACHE, else $XDG_CACHE_HOME/allocstudy, else
    ~/.cache/allocstudy."""
    if env := os.environ.get(CACHE_ENV):
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "allocstudy"


def cache_dir(kind: str) -> Path:
    """The folder of one kind of build (`builds` for allocators, `control` for the control)."""
    return cache_root() / kind


def build_key(*parts: bytes | str) -> str:
    """Hex digest naming one build: the same parts give the same key, any change another.

    Each part is length-prefixed before hashing, so moving text from one part to the next
    (flags "a" + "bc" against "ab" + "c") never gives the same key.
    """
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


@contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_file` (created with its folder) for the block.

    Raises OSError when the file cannot be made (an unwritable cache): the caller says which
    cache and how to move it.
    """
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class ToolVersion:
    """What `TOOL --version` said, or why it could not be asked (`returncode` None)."""

    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None  # why the tool could not run (missing, not executable, timed out)

    @property
    def first_line(self) -> str | None:
        """The first line of what it printed (stdout, else stderr); None when it printed nothing."""
        text = self.stdout or self.stderr
        return text.splitlines()[0] if text else None


def compilers() -> dict[str, str | None]:
    """Versions of the build tools the control and source builds need (None when missing)."""
    out: dict[str, str | None] = {}
    for tool in ("c++", "cc", "cmake", "git"):
        path = shutil.which(tool)
        if path is None:
            out[tool] = None
            continue
        first = tool_version(path, timeout=10).first_line
        out[tool] = first.strip() if first is not None else "?"
    return out


def tool_version(tool: str, *, timeout: float = 30.0) -> ToolVersion:
    """Run `tool --version`: the compiler probe of every build key and of `allocstudy doctor`."""
    try:
        out = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ToolVersion(None, error=str(exc))
    return ToolVersion(out.returncode, out.stdout, out.stderr)
