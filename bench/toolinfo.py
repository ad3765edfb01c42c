"""Which allocstudy made a run: the package version and the git commit it ran from.

Kept apart from the runner so that `allocstudy --version` answers without importing the
measurement core; the runner records the same `tool_record()` in every manifest.
"""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import __version__

__all__ = ["LIBRARIES", "git", "library_versions", "tool_record", "version_text"]

#: Python distributions whose versions a run records: the service under test (FastAPI and
#: the stack under it), the load generator, the tables, the cluster. Each shapes what is
#: measured, so the article holds them against constraints.txt (bench.report.lockcheck).
LIBRARIES = (
    "allocstudy",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "pydantic",
    "pydantic-core",
    "pyarrow",
    "aiohttp",
    "dask",
    "distributed",
)


def git(*args: str) -> str | None:
    """A git command's output in the package's checkout; None outside a checkout or without git."""
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def tool_record() -> dict[str, Any]:
    """The manifest's `tool`: name, version, commit and whether tracked files were edited."""
    return {
        "name": "allocstudy",
        "version": __version__,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def version_text() -> str:
    """`allocstudy 0.1.0 (git 1a2b3c4d5e6f, edited)`: what --version prints."""
    rec = tool_record()
    commit = rec["git_commit"]
    where = (
        f"git {commit[:12]}{', with uncommitted edits' if rec['git_dirty'] else ''}"
        if commit
        else "not from a git checkout"
    )
    return f"allocstudy {rec['version']} ({where})"


def library_versions() -> dict[str, str | None]:
    """The installed version of each of LIBRARIES (None: not installed here)."""
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
