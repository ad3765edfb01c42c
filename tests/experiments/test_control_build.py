"""Building the control: the compiler is run once per (source, flags, compiler) and cached."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from bench.experiments.control_build import (
    APT_HINT,
    CXXFLAGS,
    ControlBuildError,
    build_control,
    cache_key,
    default_cache_dir,
    source_path,
)


def test_cache_key_changes_with_source_flags_and_compiler() -> None:
    base = cache_key(b"int main(){}", ["-O2"], "g++ 12.2")
    assert base == cache_key(b"int main(){}", ["-O2"], "g++ 12.2")
    assert base != cache_key(b"int main(){return 0;}", ["-O2"], "g++ 12.2")
    assert base != cache_key(b"int main(){}", ["-O3"], "g++ 12.2")
    assert base != cache_key(b"int main(){}", ["-O2"], "g++ 13.1")
    # Length-prefixed parts: moving text from one part to the next is another key.
    assert cache_key(b"a", ["b"], "c") != cache_key(b"ab", [""], "c")


def test_default_cache_dir_follows_xdg_cache_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ALLOCSTUDY_CACHE", raising=False)  # it would move the whole cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "allocstudy" / "control"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "allocstudy" / "control"


def test_build_reuses_the_cache_and_rebuilds_for_a_changed_flag(tmp_path: Path) -> None:
    first = build_control(cache_dir=tmp_path)
    assert first.parent == tmp_path and os.access(first, os.X_OK)
    before = first.stat()

    again = build_control(cache_dir=tmp_path)
    after = again.stat()
    assert again == first
    # Not recompiled: a rebuild renames a new file into place (a new inode, a new mtime).
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    variant = build_control(cache_dir=tmp_path, extra_flags=["-DALLOCSTUDY_CACHE_TEST=1"])
    assert variant != first and os.access(variant, os.X_OK)
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


def test_concurrent_builds_agree_on_one_binary(tmp_path: Path) -> None:
    paths: list[Path] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            paths.append(build_control(cache_dir=tmp_path))
        except BaseException as exc:  # reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(paths)) == 1 and os.access(paths[0], os.X_OK)
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_compiler_is_a_clear_error_with_the_apt_command(tmp_path: Path) -> None:
    with pytest.raises(ControlBuildError, match=re.escape("no C++ compiler found")) as info:
        build_control(cache_dir=tmp_path, compiler="/nonexistent/c++")
    assert APT_HINT in str(info.value)


def test_compile_error_carries_the_compiler_message(tmp_path: Path) -> None:
    broken = tmp_path / "broken.cpp"
    broken.write_text("int main() { return undeclared_name; }\n")
    with pytest.raises(ControlBuildError) as info:
        build_control(cache_dir=tmp_path / "cache", source=broken)
    message = str(info.value)
    assert "undeclared_name" in message and "error" in message
    assert APT_HINT in message
    leftovers = [*(tmp_path / "cache").glob("churn-*"), *(tmp_path / "cache").glob("*.tmp")]
    assert not leftovers, "a failed build must leave no binary behind"


def test_missing_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ControlBuildError, match="cannot read the control's source"):
        build_control(cache_dir=tmp_path, source=tmp_path / "absent.cpp")


def test_the_source_ships_with_the_checkout() -> None:
    assert source_path().is_file()
    assert "-O2" in CXXFLAGS and "-std=c++17" in CXXFLAGS


def test_default_cache_dir_follows_allocstudy_cache_like_source_builds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALLOCSTUDY_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache" / "control"
