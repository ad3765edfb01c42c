"""Building the C++ control: compile cxx/churn.cpp once per source, flags and compiler.

The binary is compiled on first use with the system compiler and kept in the one build cache
(bench.allocators.buildcache: `$ALLOCSTUDY_CACHE/control`, by default
`~/.cache/allocstudy/control`) under a key made of the source, the flags and the compiler's
version, so an edit of any of them rebuilds it and nothing else does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from bench.allocators import buildcache
from bench.allocators.buildcache import CACHE_ENV, build_key, locked, tool_version
from bench.experiments.control_program import ControlBuildError

__all__ = [
    "APT_HINT",
    "CXXFLAGS",
    "LDLIBS",
    "ControlBuildError",
    "build_control",
    "cache_key",
    "default_cache_dir",
    "find_compiler",
    "source_path",
]

#: Compile flags of the cached build (part of the cache key).
CXXFLAGS: tuple[str, ...] = ("-O2", "-std=c++17", "-pthread")
#: Link libraries: dlsym/dladdr live in libdl on older glibc (a no-op stub on glibc >= 2.34).
LDLIBS: tuple[str, ...] = ("-ldl",)
#: What to run when there is no compiler (Debian and Ubuntu).
APT_HINT = "apt-get install g++"


def source_path() -> Path:
    """cxx/churn.cpp of this checkout (the package is installed editable from the repository)."""
    return Path(__file__).resolve().parents[2] / "cxx" / "churn.cpp"


def default_cache_dir() -> Path:
    """The control's folder of the build cache: $ALLOCSTUDY_CACHE/control, else
    $XDG_CACHE_HOME/allocstudy/control, else ~/.cache/allocstudy/control."""
    return buildcache.cache_dir("control")


def find_compiler(compiler: str | None = None) -> str:
    """Absolute path of the C++ compiler: the one given, else $CXX, else c++, else g++."""
    candidates = [compiler] if compiler else [os.environ.get("CXX") or "", "c++", "g++"]
    for name in candidates:
        if name and (found := shutil.which(name)):
            return found
    tried = ", ".join(repr(c) for c in candidates if c)
    raise ControlBuildError(
        f"no C++ compiler found (tried {tried}); the C++ control needs one to build "
        f"cxx/churn.cpp. Install it with: {APT_HINT}"
    )


def _compiler_version(compiler: str) -> str:
    """The compiler's `--version` text: a compiler upgrade must rebuild the binary."""
    version = tool_version(compiler)
    if version.returncode is None:
        raise ControlBuildError(
            f"cannot run the C++ compiler {compiler}: {version.error}. Install one with: {APT_HINT}"
        )
    if version.returncode != 0:
        raise ControlBuildError(
            f"{compiler} --version failed (exit {version.returncode}): {version.stderr.strip()}"
        )
    return f"{os.path.realpath(compiler)}\n{version.stdout.strip()}"


def cache_key(source: bytes, flags: Sequence[str], compiler_version: str) -> str:
    """Hex digest naming one build: the same source, flags and compiler give the same key."""
    return build_key(source, "\0".join(flags), compiler_version)


def _compile(compiler: str, source: Path, flags: Sequence[str], out: Path) -> None:
    cmd = [compiler, *flags, str(source), "-o", str(out), *LDLIBS]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise ControlBuildError(f"compiling {source} took over 600 s: {' '.join(cmd)}") from None
    except OSError as exc:
        raise ControlBuildError(
            f"cannot run the C++ compiler {compiler}: {exc}. Install one with: {APT_HINT}"
        ) from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()
        raise ControlBuildError(
            f"compiling {source} failed (exit {proc.returncode}):\n  {' '.join(cmd)}\n{message}\n"
            f"A working C++17 compiler is needed; on Debian/Ubuntu: {APT_HINT}"
        )


def build_control(
    *,
    cache_dir: Path | None = None,
    compiler: str | None = None,
    extra_flags: Sequence[str] = (),
    source: Path | None = None,
) -> Path:
    """Path of a compiled control binary, compiling it only if no cached build matches.

    The binary is named after `cache_key` of the source, the flags (CXXFLAGS + extra_flags)
    and the compiler version. Two processes building at once serialize on a lock file; the
    compiler writes a temporary file that is renamed into place, so a reader never sees a
    half-written binary even if a build is killed.
    """
    src = source or source_path()
    try:
        text = src.read_bytes()
    except OSError as exc:
        raise ControlBuildError(
            f"cannot read the control's source {src}: {exc.strerror or exc}; "
            "allocstudy must run from its source checkout (pip install -e .)"
        ) from None
    cxx = find_compiler(compiler)
    flags = [*CXXFLAGS, *extra_flags]
    key = cache_key(text, [*flags, *LDLIBS], _compiler_version(cxx))
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    binary = folder / f"churn-{key[:20]}"
    if _is_executable(binary):
        return binary
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(folder / f".churn-{key[:20]}.lock"))
        except OSError as exc:
            raise ControlBuildError(
                f"cannot use the build cache {folder}: {exc.strerror or exc}; "
                f"pass cache_dir or set {CACHE_ENV} to a writable folder"
            ) from None
        if _is_executable(binary):  # another process built it while we waited
            return binary
        fd, tmp_name = tempfile.mkstemp(prefix=f".{binary.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _compile(cxx, src, flags, tmp)
            tmp.chmod(0o755)
            os.replace(tmp, binary)
        finally:
            tmp.unlink(missing_ok=True)
    return binary


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
