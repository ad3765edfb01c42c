"""The allocator registry: find each malloc library, or say why it cannot be had here.

Resolution turns a spec entry (a built-in name, a variant, a library file or a source build)
into an `Allocator`: where its library is, its sha256, the environment that preloads it, or
why it cannot be had here and the command that fixes that. Proof that a preload really serves
malloc is bench.allocators.verification; source builds are bench.allocators.sourcebuild.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Literal

from bench.allocators.sourcebuild import BuildError, build_from_source
from bench.spec import (
    BUILTIN_ALLOCATORS,
    LibraryAllocator,
    SourceAllocator,
    SourceSpec,
    Spec,
    VariantAllocator,
)

__all__ = [
    "BUN_MIMALLOC_COMMIT",
    "Allocator",
    "builtin_entry",
    "find_system_library",
    "libc_path",
    "resolve",
    "resolve_for_spec",
    "resolve_spec",
]

Kind = Literal["glibc", "system", "wheel", "library", "source"]

#: Bun pins its mimalloc fork in cmake/targets/BuildMimalloc.cmake of oven-sh/bun.
BUN_MIMALLOC_GIT = "https://github.com/oven-sh/mimalloc.git"
BUN_MIMALLOC_COMMIT = "f89e039be029cf9733b2d2162916f93b8b9f89c6"
#: The cmake options Bun uses, made into a preloadable shared library.
BUN_MIMALLOC_CMAKE = [
    "-DMI_BUILD_SHARED=ON",
    "-DMI_BUILD_STATIC=OFF",
    "-DMI_BUILD_OBJECT=OFF",
    "-DMI_BUILD_TESTS=OFF",
    "-DMI_OVERRIDE=ON",
    "-DMI_SKIP_COLLECT_ON_EXIT=ON",
    "-DMI_NO_THP=1",
]
BUN_SOURCE_ENV = "ALLOCSTUDY_MIMALLOC_BUN_SOURCE"

# name -> (soname, Debian package) for the allocators a system package provides.
_SYSTEM_LIBS: dict[str, tuple[str, str]] = {
    "jemalloc": ("libjemalloc.so.2", "libjemalloc2"),
    "tcmalloc": ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
    "mimalloc-v2": ("libmimalloc.so.2", "libmimalloc2.0"),
}

_DESCRIPTIONS = {
    "glibc": "ptmalloc2, the system default (no preload)",
    "jemalloc": "jemalloc 5.x (Debian libjemalloc2)",
    "tcmalloc": "gperftools tcmalloc, minimal (Debian libtcmalloc-minimal4)",
    "mimalloc-v2": "mimalloc 2.x (Debian libmimalloc2.0)",
    "mimalloc-v3": "mimalloc 3.x (PyPI cmeel-mimalloc)",
    "mimalloc-bun": f"Bun's fork of mimalloc v3 (oven-sh/mimalloc @ {BUN_MIMALLOC_COMMIT[:10]})",
}


@dataclass(frozen=True)
class Allocator:
    """A resolved allocator: what to preload, or why it cannot be had here."""

    name: str
    kind: Kind
    library: Path | None  # None: glibc, nothing to preload
    env: dict[str, str] = field(default_factory=dict)
    base: str | None = None
    description: str = ""
    available: bool = True
    reason: str | None = None
    fix: str | None = None  # the command that makes it available
    sha256: str | None = None
    same_as: str | None = None  # the A/A duplicate names the allocator it runs again

    def preload_env(self) -> dict[str, str]:
        """Environment that makes a child process run on this allocator."""
        env = dict(self.env)
        if self.library is not None:
            env["LD_PRELOAD"] = str(self.library)
        return env

    def expected_library(self) -> str:
        """Real path of the library that must serve malloc in a process started with it."""
        return os.path.realpath(self.library) if self.library is not None else libc_path()


@cache
def libc_path() -> str:
    """Real path of the C library this interpreter runs on (what serves malloc without preload)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c") or "libc.so.6"
    for line in _ldconfig_cache().get(name, []):
        return os.path.realpath(line)
    for d in _library_dirs():
        if (d / name).exists():
            return os.path.realpath(d / name)
    return name


@cache
def _ldconfig_cache() -> dict[str, list[str]]:
    """soname -> paths, from `ldconfig -p` (empty when ldconfig is absent)."""
    try:
        out = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    want_x86_64 = platform.machine() == "x86_64"
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)", line)
        if m and (("x86-64" in m.group(2)) == want_x86_64):
            found.setdefault(m.group(1), []).append(m.group(3))
    return found


def _library_dirs() -> list[Path]:
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    dirs = [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []
    dirs += ["/usr/lib64", "/usr/lib", "/usr/local/lib", "/lib64", "/lib"]
    return [Path(d) for d in dirs if Path(d).is_dir()]


def find_system_library(soname: str) -> Path | None:
    """A library by soname: ldconfig's cache first, then the usual library folders."""
    for path in _ldconfig_cache().get(soname, []):
        if Path(path).is_file():
            return Path(path)
    for d in _library_dirs():
        if (d / soname).is_file():
            return d / soname
    return None


def _wheel_mimalloc_v3() -> Path | None:
    """libmimalloc.so.3 from the cmeel-mimalloc wheel in this environment, or the system's."""
    for key in ("purelib", "platlib"):
        lib = Path(sysconfig.get_paths()[key]) / "cmeel.prefix" / "lib" / "libmimalloc.so.3"
        if lib.is_file():
            return lib
    return find_system_library("libmimalloc.so.3")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _unavailable(name: str, kind: Kind, reason: str, fix: str | None, **kw: object) -> Allocator:
    return Allocator(
        name=name,
        kind=kind,
        library=None,
        available=False,
        reason=reason,
        fix=fix,
        description=str(kw.get("description") or _DESCRIPTIONS.get(name, "")),
        env=dict(kw.get("env") or {}),
        base=kw.get("base"),  # type: ignore[arg-type]
    )


def _with_library(name: str, kind: Kind, library: Path, **kw: object) -> Allocator:
    return Allocator(
        name=name,
        kind=kind,
        library=library,
        sha256=_sha256(library),
        description=str(kw.get("description") or _DESCRIPTIONS.get(name, "")),
        env=dict(kw.get("env") or {}),
        base=kw.get("base"),  # type: ignore[arg-type]
    )


def builtin_entry(name: str) -> SourceAllocator | None:
    """The source entry behind a built-in that has no package (mimalloc-bun), else None."""
    if name != "mimalloc-bun":
        return None
    local = os.environ.get(BUN_SOURCE_ENV)
    source = (
        SourceSpec(path=Path(local), cmake_args=BUN_MIMALLOC_CMAKE, library="libmimalloc*.so*")
        if local
        else SourceSpec(
            git=BUN_MIMALLOC_GIT,
            commit=BUN_MIMALLOC_COMMIT,
            cmake_args=BUN_MIMALLOC_CMAKE,
            library="libmimalloc*.so*",
        )
    )
    return SourceAllocator(name="mimalloc-bun", source=source, description=_DESCRIPTIONS[name])


def _resolve_builtin(name: str, *, build: bool) -> Allocator:
    if name == "glibc":
        return Allocator(
            name="glibc",
            kind="glibc",
            library=None,
            description=_DESCRIPTIONS[name],
            sha256=_sha256(Path(libc_path())) if Path(libc_path()).is_file() else None,
        )
    if name in _SYSTEM_LIBS:
        soname, package = _SYSTEM_LIBS[name]
        lib = find_system_library(soname)
        if lib is None:
            return _unavailable(
                name, "system", f"{soname} not found", f"apt-get install -y {package}"
            )
        return _with_library(name, "system", lib)
    if name == "mimalloc-v3":
        lib = _wheel_mimalloc_v3()
        if lib is None:
            return _unavailable(
                name,
                "wheel",
                "libmimalloc.so.3 not found in this environment",
                f"{sys.executable} -m pip install cmeel-mimalloc",
            )
        return _with_library(name, "wheel", lib)
    entry = builtin_entry(name)
    assert entry is not None, name
    return _resolve_source(
        entry,
        build=build,
        fix=(
            f"needs its source: set {BUN_SOURCE_ENV}=/path/to/a/checkout of oven-sh/mimalloc at "
            f"{BUN_MIMALLOC_COMMIT[:12]}, or give the machine access to github.com"
        ),
    )


def _resolve_source(entry: SourceAllocator, *, build: bool, fix: str | None = None) -> Allocator:
    if not build:
        return _unavailable(
            entry.name,
            "source",
            "not built (resolution without builds)",
            fix,
            env=entry.env,
            description=entry.description,
        )
    try:
        lib = build_from_source(entry.name, entry.source)
    except BuildError as exc:
        return _unavailable(
            entry.name,
            "source",
            str(exc),
            fix or "check the source entry",
            env=entry.env,
            description=entry.description,
        )
    return _with_library(entry.name, "source", lib, env=entry.env, description=entry.description)


def resolve(
    entry: str | VariantAllocator | LibraryAllocator | SourceAllocator, *, build: bool = True
) -> Allocator:
    """Resolve one spec entry. Never raises for a missing allocator: it comes back unavailable."""
    if isinstance(entry, str):
        return _resolve_builtin(entry, build=build)
    if isinstance(entry, VariantAllocator):
        base = _resolve_builtin(entry.base, build=build)
        return Allocator(
            name=entry.name,
            kind=base.kind,
            library=base.library,
            env={**base.env, **entry.env},
            base=entry.base,
            description=entry.description or f"{entry.base} with {entry.env}",
            available=base.available,
            reason=base.reason,
            fix=base.fix,
            sha256=base.sha256,
        )
    if isinstance(entry, LibraryAllocator):
        lib = entry.library
        if not lib.is_file():
            return _unavailable(
                entry.name,
                "library",
                f"{lib} does not exist",
                None,
                env=entry.env,
                description=entry.description,
            )
        return _with_library(
            entry.name, "library", lib, env=entry.env, description=entry.description or str(lib)
        )
    return _resolve_source(entry, build=build)


def _again(first: Allocator, name: str) -> Allocator:
    """The A/A duplicate: the same library and environment under a second name."""
    return replace(
        first,
        name=name,
        same_as=first.name,
        description=f"{first.name} run again, unchanged: the A/A pair that measures the noise",
    )


def resolve_spec(spec: Spec, *, build: bool = True) -> list[Allocator]:
    """Every allocator of a spec, in spec order, the A/A duplicate (if any) last."""
    allocs = [resolve(entry, build=build) for entry in spec.allocators]
    if spec.aa_pair and spec.aa_again:
        first = next(a for a in allocs if a.name == spec.aa_pair)
        allocs.append(_again(first, spec.aa_again))
    return allocs


def resolve_for_spec(spec: Spec, name: str, *, build: bool = True) -> Allocator:
    """One allocator by name: the spec's entry of that name (or its A/A duplicate), else a
    built-in of that name."""
    if spec.aa_pair and name == spec.aa_again:
        return _again(resolve_for_spec(spec, spec.aa_pair, build=build), name)
    for entry in spec.allocators:
        if (entry if isinstance(entry, str) else entry.name) == name:
            return resolve(entry, build=build)
    if name in BUILTIN_ALLOCATORS:
        return resolve(name, build=build)
    known = ", ".join(dict.fromkeys([*spec.allocator_names, *BUILTIN_ALLOCATORS]))
    raise KeyError(f"unknown allocator {name!r} (known: {known})")
