"""Allocators built from source with cmake, cached while their inputs are unchanged.

A source build is keyed by what determines its output: the source (a content hash of a local
tree, or a git URL and pinned commit), the cmake arguments and the compiler. The same key
finds the same library in the cache, so a study does not rebuild an allocator it built before.
The cache itself (its root, keys, lock and tool probe) is bench.allocators.buildcache, shared
with the C++ control's build.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.allocators.buildcache import build_key, cache_dir, locked, tool_version
from bench.errors import UserError
from bench.spec import SourceSpec

__all__ = ["BuildError", "build_from_source", "source_key"]

_SKIP_DIRS = {".git", "build", "out", "__pycache__", ".cache"}
GIT_TIMEOUT_S = 120
BUILD_TIMEOUT_S = 900


class BuildError(UserError):
    """A source build that could not be made; the message says why and what to do."""


def _tree_hash(root: Path) -> str:
    """Content hash of a source tree (names and bytes), ignoring VCS and build folders."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for fname in sorted(filenames):
            path = Path(dirpath, fname)
            if path.is_symlink() or not path.is_file():
                continue
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def _tool_version(tool: str) -> str:
    """The first line of `tool --version` for the key ("missing" when it cannot run)."""
    version = tool_version(tool)
    if version.returncode is None:
        return "missing"
    return version.first_line if version.first_line is not None else "?"


def source_key(source: SourceSpec) -> str:
    """The cache key of a build: source identity, cmake arguments, cmake and compiler."""
    if source.path is not None:
        if not source.path.is_dir():
            raise BuildError(f"source path {source.path} is not a folder")
        origin = "tree:" + _tree_hash(source.path)
    else:
        origin = f"git:{source.git}@{source.commit}"
    return build_key(
        origin,
        json.dumps(source.cmake_args),
        source.library,
        _tool_version("cmake"),
        _tool_version("cc"),
    )[:20]


def _run(cmd: list[str], *, cwd: Path | None, timeout: float, what: str) -> None:
    try:
        out = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BuildError(f"{what}: {cmd[0]} is not installed (apt-get install {cmd[0]})") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{what}: gave no answer within {timeout:.0f} s") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        raise BuildError(f"{what} failed: {' / '.join(tail) or f'exit {out.returncode}'}")


def _fetch_git(source: SourceSpec, dest: Path) -> None:
    assert source.git is not None and source.commit is not None
    _run(["git", "init", "-q", str(dest)], cwd=None, timeout=30, what="git init")
    _run(
        ["git", "fetch", "-q", "--depth", "1", source.git, source.commit],
        cwd=dest,
        timeout=GIT_TIMEOUT_S,
        what=f"fetching {source.git} at {source.commit[:12]}",
    )
    _run(["git", "checkout", "-q", "FETCH_HEAD"], cwd=dest, timeout=60, what="git checkout")


def build_from_source(name: str, source: SourceSpec, *, cache: Path | None = None) -> Path:
    """Build (or find in the cache) the shared library of a source allocator; return its path.

    Raises BuildError with a one-line reason when the source cannot be reached or built.
    """
    root = cache / "builds" if cache is not None else cache_dir("builds")
    key = source_key(source)
    final = root / f"{name}-{key}"
    with locked(root / f".{name}.lock"):
        record = final / "build.json"
        if record.is_file():
            lib = final / json.loads(record.read_text())["library"]
            if lib.is_file():
                return lib
        work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
        try:
            if source.path is not None:
                src = source.path
            else:
                src = work / "src"
                _fetch_git(source, src)
            build = work / "build"
            _run(
                [
                    "cmake",
                    "-S",
                    str(src),
                    "-B",
                    str(build),
                    "-DCMAKE_BUILD_TYPE=Release",
                    *source.cmake_args,
                ],
                cwd=None,
                timeout=BUILD_TIMEOUT_S,
                what=f"configuring {name}",
            )
            _run(
                ["cmake", "--build", str(build), "--parallel", str(os.cpu_count() or 1)],
                cwd=None,
                timeout=BUILD_TIMEOUT_S,
                what=f"building {name}",
            )
            libs = sorted(
                (p for p in build.rglob(source.library) if p.is_file() and not p.is_symlink()),
                key=lambda p: len(p.name),
            )
            if not libs:
                raise BuildError(f"building {name}: no file matching {source.library!r} was built")
            out = work / "out"
            out.mkdir()
            shutil.copy2(libs[0], out / libs[0].name)
            (out / "build.json").write_text(
                json.dumps(
                    {
                        "key": key,
                        "library": libs[0].name,
                        "name": name,
                        "source": source.model_dump(mode="json"),
                    },
                    indent=2,
                )
            )
            if final.exists():
                shutil.rmtree(final)
            os.replace(out, final)
            return final / libs[0].name
        finally:
            shutil.rmtree(work, ignore_errors=True)
