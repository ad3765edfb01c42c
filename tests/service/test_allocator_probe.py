"""service.allocators.probe and .serving: dladdr names the library serving malloc, under
every preload."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from service_support import LIBRARIES, expected_library, library_or_skip

from service.allocators import serving

VERSIONS = {
    "glibc": r"^glibc \d+\.\d+",
    "jemalloc": r"^5\.\d+\.\d+-",
    "tcmalloc": r"^gperftools \d+\.\d+",
    "mimalloc-v2": r"^2\.\d+\.\d+$",
    "mimalloc-v3": r"^3\.\d+\.\d+$",
}


def _probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    return subprocess.run(
        [sys.executable, "-m", "service.allocators.probe"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_the_probe_names_the_preloaded_library_and_its_version(name: str) -> None:
    library = library_or_skip(name)
    out = _probe({} if library is None else {"LD_PRELOAD": str(library)})
    report = json.loads(out.stdout)
    assert set(report) == {"pid", "malloc_library", "version", "pythonmalloc"}
    assert report["malloc_library"] == expected_library(name)
    assert re.match(VERSIONS[name], report["version"]), report["version"]
    assert report["pid"] != os.getpid()


def test_the_probe_reports_pythonmalloc() -> None:
    assert json.loads(_probe({}).stdout)["pythonmalloc"] == "pymalloc"
    assert json.loads(_probe({"PYTHONMALLOC": "malloc"}).stdout)["pythonmalloc"] == "malloc"


def test_a_failed_preload_shows_as_glibc() -> None:
    out = _probe({"LD_PRELOAD": "/nonexistent/libnothing.so"})
    assert json.loads(out.stdout)["malloc_library"] == expected_library("glibc")


def test_the_probe_imports_little() -> None:
    code = "import sys, service.allocators.probe as m; m.probe_report(); print(sorted(sys.modules))"
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    for heavy in ("fastapi", "uvicorn", "pydantic", "bench", "defusedxml"):
        assert f"'{heavy}'" not in modules


@pytest.mark.skipif("LD_PRELOAD" in os.environ, reason="this test process runs under a preload")
def test_in_process_this_interpreter_runs_on_libc() -> None:
    assert serving.malloc_library() == expected_library("glibc")
    assert (serving.allocator_version() or "").startswith("glibc ")
