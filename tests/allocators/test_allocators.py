"""The allocator registry: resolution, real verification through dladdr, and source builds."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest
from studyrun import ROOT, run_cli

from bench.allocators.registry import (
    BUN_MIMALLOC_COMMIT,
    Allocator,
    libc_path,
    resolve,
    resolve_for_spec,
)
from bench.allocators.sourcebuild import build_from_source, source_key
from bench.allocators.verification import verify
from bench.spec import (
    BUILTIN_ALLOCATORS,
    LibraryAllocator,
    SourceAllocator,
    SourceSpec,
    VariantAllocator,
    parse_spec,
)

PACKAGED = ["jemalloc", "tcmalloc", "mimalloc-v2", "mimalloc-v3"]


def test_glibc_needs_no_preload_and_is_served_by_libc():
    glibc = resolve("glibc")
    assert glibc.available and glibc.library is None
    assert "LD_PRELOAD" not in glibc.preload_env()
    check = verify(glibc)
    assert check.ok, check.reason
    assert os.path.realpath(check.malloc_library) == libc_path()
    assert check.version and "glibc" in check.version


@pytest.mark.parametrize("name", PACKAGED)
def test_packaged_allocators_resolve_and_really_serve_malloc(name: str):
    alloc = resolve(name)
    assert alloc.available, f"{name}: {alloc.reason} (fix: {alloc.fix})"
    assert alloc.library is not None and alloc.library.is_file()
    assert alloc.sha256 and len(alloc.sha256) == 64
    check = verify(alloc)
    assert check.ok, check.reason
    assert os.path.realpath(check.malloc_library) == os.path.realpath(alloc.library)
    assert check.version


def test_mimalloc_versions_are_read_from_the_libraries():
    assert verify(resolve("mimalloc-v2")).version.startswith("2.")
    assert verify(resolve("mimalloc-v3")).version.startswith("3.")


def test_a_silently_ignored_preload_is_caught(tmp_path: Path):
    bogus = tmp_path / "libnotelf.so"
    bogus.write_bytes(b"\x7fELF but not really")
    alloc = resolve(LibraryAllocator(name="bogus", library=bogus))
    assert alloc.available  # the file exists ...
    check = verify(alloc)
    assert not check.ok  # ... but ld.so ignored it and malloc stayed in libc
    assert "preload" in check.reason


def test_a_library_that_does_not_serve_malloc_is_caught():
    libm = Path("/usr/lib/x86_64-linux-gnu/libm.so.6")
    if not libm.exists():
        pytest.skip("no libm at the Debian path")
    check = verify(resolve(LibraryAllocator(name="libm", library=libm)))
    assert not check.ok and "expected" in check.reason


def test_variant_keeps_the_base_library_and_adds_its_environment():
    alloc = resolve(
        VariantAllocator(
            name="je-bg", base="jemalloc", env={"MALLOC_CONF": "background_thread:true"}
        )
    )
    assert alloc.library == resolve("jemalloc").library
    assert alloc.preload_env()["MALLOC_CONF"] == "background_thread:true"
    assert verify(alloc).ok


def test_missing_library_is_unavailable_with_a_reason(tmp_path: Path):
    alloc = resolve(LibraryAllocator(name="gone", library=tmp_path / "nope.so"))
    assert not alloc.available and "does not exist" in alloc.reason
    assert not verify(alloc).ok


def test_mimalloc_bun_without_its_source_is_unavailable_with_the_reason(monkeypatch):
    monkeypatch.delenv("ALLOCSTUDY_MIMALLOC_BUN_SOURCE", raising=False)
    alloc = resolve("mimalloc-bun")
    if alloc.available:
        pytest.skip("this machine reaches the fork's source: nothing to test here")
    assert alloc.reason and alloc.fix and BUN_MIMALLOC_COMMIT[:12] in alloc.fix


def test_resolve_for_spec_prefers_the_spec_entry_and_rejects_unknown_names():
    spec = parse_spec("name: t\ntitle: T\nallocators:\n  - {name: je, base: jemalloc}\n")
    assert resolve_for_spec(spec, "je").base == "jemalloc"
    assert resolve_for_spec(spec, "glibc").name == "glibc"
    with pytest.raises(KeyError, match="hoard"):
        resolve_for_spec(spec, "hoard")


def test_expected_library_is_a_real_path():
    alloc = Allocator(name="x", kind="library", library=Path("/lib/x86_64-linux-gnu/libc.so.6"))
    assert alloc.expected_library() == os.path.realpath("/lib/x86_64-linux-gnu/libc.so.6")


# --- source builds: the mimalloc tree inside the cmeel-mimalloc sdist, built with cmake -----

SDIST = "cmeel_mimalloc-3.4.3.tar.gz"
SDIST_SHA256 = "8d355a77cc0f4133cdeb9156c9098bbb4e88924326d38343cf73ff9caa95ece3"


def _sdist(cache: Path) -> Path:
    """The sdist from the package index (once; kept in .cache/ between test sessions)."""
    import hashlib
    import re

    target = cache / SDIST
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == SDIST_SHA256:
        return target
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")
    try:
        page = urllib.request.urlopen(f"{index}/cmeel-mimalloc/", timeout=60).read().decode()
        url = next(u for u in re.findall(r'href="([^"]+)"', page) if SDIST in u)
        data = urllib.request.urlopen(url.split("#")[0], timeout=120).read()
    except (OSError, StopIteration) as exc:
        pytest.skip(f"the package index cannot be reached for the mimalloc sdist: {exc}")
    assert hashlib.sha256(data).hexdigest() == SDIST_SHA256
    cache.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


@pytest.fixture(scope="session")
def mimalloc_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    archive = _sdist(ROOT / ".cache" / "downloads")
    dest = tmp_path_factory.mktemp("sdist")
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    tree = dest / "cmeel_mimalloc-3.4.3" / "mimalloc"
    assert (tree / "CMakeLists.txt").is_file()
    return tree


CMAKE = ["-DMI_BUILD_TESTS=OFF", "-DMI_BUILD_STATIC=OFF", "-DMI_BUILD_OBJECT=OFF"]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_source_build_resolves_verifies_and_is_reused_from_the_cache(
    mimalloc_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ALLOCSTUDY_CACHE", str(tmp_path / "cache"))
    entry = SourceAllocator(
        name="mi-src",
        source=SourceSpec(path=mimalloc_tree, cmake_args=CMAKE, library="libmimalloc*.so*"),
    )
    t0 = time.monotonic()
    alloc = resolve(entry)
    first_build_s = time.monotonic() - t0
    assert alloc.available, alloc.reason
    assert alloc.kind == "source" and alloc.library.is_relative_to(tmp_path / "cache")
    check = verify(alloc)
    assert check.ok, check.reason
    assert check.version == "3.4.3"
    record = json.loads((alloc.library.parent / "build.json").read_text())
    assert record["key"] == source_key(entry.source)

    mtime = alloc.library.stat().st_mtime_ns
    t0 = time.monotonic()
    again = resolve(entry)
    assert again.library == alloc.library and again.library.stat().st_mtime_ns == mtime
    assert time.monotonic() - t0 < first_build_s / 3  # no cmake run the second time

    changed = SourceSpec(
        path=mimalloc_tree, cmake_args=[*CMAKE, "-DMI_SECURE=ON"], library="libmimalloc*.so*"
    )
    assert source_key(changed) != source_key(entry.source)


def test_source_build_of_a_broken_tree_is_unavailable_with_the_reason(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ALLOCSTUDY_CACHE", str(tmp_path / "cache"))
    tree = tmp_path / "src"
    tree.mkdir()
    (tree / "CMakeLists.txt").write_text("this is not cmake(\n")
    alloc = resolve(SourceAllocator(name="broken", source=SourceSpec(path=tree)))
    assert not alloc.available and "configuring broken failed" in alloc.reason
    assert not list((tmp_path / "cache" / "builds").glob("broken-*"))  # nothing half-built


def test_source_build_error_is_raised_by_the_builder(tmp_path: Path):
    from bench.allocators.sourcebuild import BuildError

    with pytest.raises(BuildError, match="is not a folder"):
        build_from_source("x", SourceSpec(path=tmp_path / "missing"), cache=tmp_path)


# --- doctor -------------------------------------------------------------------------------


def test_doctor_on_the_default_spec_reports_five_verified_and_bun_unavailable(monkeypatch):
    proc = run_cli("doctor", "specs/default.yaml", "--json", timeout=120)
    report = json.loads(proc.stdout)
    rows = {r["name"]: r for r in report["allocators"]}
    assert list(rows) == list(BUILTIN_ALLOCATORS)  # the default spec names all six
    for name in ("glibc", *PACKAGED):
        assert rows[name]["found"] and rows[name]["verified"], rows[name]
        assert rows[name]["version"] and rows[name]["path"]
    bun = rows["mimalloc-bun"]
    if not bun["found"]:
        assert bun["reason"] and not bun["verified"]
    assert report["can_run"] is True and proc.returncode == 0
    # when each gives memory back on its own, read back in its own process
    decay = {t["setting"]: t for t in rows["jemalloc"]["timers"]}["opt.dirty_decay_ms"]
    assert decay["value"] == "10000 ms" and rows["jemalloc"]["return_horizon_s"] == 10.0
    assert rows["glibc"]["return_horizon_s"] == 0.0
    assert report["machine"]["cgroup_mode"] in ("v1", "v2", "none")
    assert {"thp", "swap_bytes", "governor", "compilers"} <= set(report["machine"])


def test_doctor_table_names_each_problem_with_its_fix():
    proc = run_cli("doctor", "specs/default.yaml", timeout=120)
    assert proc.returncode == 0
    assert "mimalloc-v3" in proc.stdout and "memory accounting" in proc.stdout
    assert "when each gives memory back on its own" in proc.stdout
    assert "opt.dirty_decay_ms 10000 ms" in proc.stdout
    if "mimalloc-bun: unavailable" in proc.stdout:
        assert "fix:" in proc.stdout


def test_doctor_exits_1_when_an_allocator_is_found_but_not_loaded(tmp_path: Path):
    bogus = tmp_path / "libnotelf.so"
    bogus.write_bytes(b"junk")
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: s\ntitle: S\nallocators: [glibc, {{name: bad, library: {bogus}}}]\n")
    proc = run_cli("doctor", str(spec), "--json", timeout=120)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert report["can_run"] is False
    assert any("bad" in p["what"] for p in report["problems"])
