"""Fixtures of the C++ control tests: one compiled binary per session, the allocators here."""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.experiments.control_build import build_control

#: The preloadable libraries of the study on this kind of machine (None: glibc, no preload).
LIBRARIES: dict[str, str | None] = {
    "glibc": None,
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "mimalloc-v2": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    # The cmeel-mimalloc wheel of the interpreter running the tests (a worktree has no .venv).
    "mimalloc-v3": str(
        Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix/lib/libmimalloc.so.3"
    ),
}


def env_for(name: str) -> dict[str, str]:
    """A minimal environment that runs a child on the named allocator; skip if it is absent."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    lib = LIBRARIES[name]
    if lib is not None:
        if not Path(lib).is_file():
            pytest.skip(f"{name} is not installed here ({lib})")
        env["LD_PRELOAD"] = lib
    return env


@pytest.fixture(scope="session")
def control_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The control, compiled once into a private cache (never the user's ~/.cache)."""
    return build_control(cache_dir=tmp_path_factory.mktemp("control-cache"))


@pytest.fixture(scope="session")
def allocator_env() -> Callable[[str], dict[str, str]]:
    """env_for as a fixture (test modules do not import conftest by name)."""
    return env_for
