"""service.allocators.stats: each allocator's own statistics move as they must, read inside
real preloaded interpreters (50 MB allocated through malloc, then freed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from service_support import LIBRARIES, preload_env

ROOT = Path(__file__).resolve().parents[2]
MB = 1_000_000

# 50 MB in 1,000 malloc blocks of 50 KB (under glibc's mmap threshold: heap chunks), then a
# block allocated after them from the top of the heap (100 KB: no freed chunk of that size
# exists yet, and under glibc's mmap threshold), so the top stays busy once they are freed.
_ALLOCATE = """
import ctypes, json
from service.allocators.stats import internal_record
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
before = internal_record()
blocks = [libc.malloc(50_000) for _ in range(1000)]
for b in blocks:
    ctypes.memset(b, 1, 50_000)
keeper = libc.malloc(100_000)
during = internal_record()
for b in blocks:
    libc.free(b)
after = internal_record()
print(json.dumps({"before": before, "during": during, "after": after}))
"""


def _run(allocator: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    child = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    child.update(preload_env(allocator), **(env or {}), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", _ALLOCATE], env=child, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _field(record: dict[str, Any], name: str) -> int:
    return int(record["malloc"]["bytes"][name])


@pytest.mark.parametrize("allocator", ["glibc", "jemalloc", "tcmalloc"])
def test_live_bytes_rise_by_what_was_allocated_and_fall_after_the_free(allocator: str) -> None:
    seen = _run(allocator)
    before, during, after = (_field(seen[k], "live") for k in ("before", "during", "after"))
    assert 48 * MB < during - before < 62 * MB  # size classes round 50 KB up (jemalloc: 53 KB)
    assert after - before < 4 * MB
    assert set(seen["during"]["malloc"]["source"]) >= set(seen["during"]["malloc"]["bytes"])


def test_glibc_keeps_freed_chunks_under_a_busy_top_as_free_in_its_heaps() -> None:
    seen = _run("glibc")
    assert seen["after"]["malloc"]["family"] == "glibc"
    grown = _field(seen["after"], "free_in_heaps") - _field(seen["during"], "free_in_heaps")
    assert grown > 48 * MB  # freed below the keeper: not trimmed, counted as free
    assert _field(seen["after"], "releasable_top") < 4 * MB  # the top is the keeper's


def test_jemalloc_holds_freed_pages_as_dirty_right_after_the_free() -> None:
    seen = _run("jemalloc")
    assert _field(seen["after"], "dirty") - _field(seen["during"], "dirty") > 20 * MB
    assert _field(seen["during"], "resident") >= _field(seen["during"], "live")
    assert seen["after"]["malloc"]["absent"] == {}


def test_tcmalloc_holds_freed_spans_in_its_page_heap() -> None:
    seen = _run("tcmalloc")
    free_after = _field(seen["after"], "pageheap_free") + _field(seen["after"], "pageheap_unmapped")
    free_during = _field(seen["during"], "pageheap_free") + _field(
        seen["during"], "pageheap_unmapped"
    )
    assert free_after - free_during > 40 * MB
    assert _field(seen["during"], "heap_size") >= _field(seen["during"], "live")


@pytest.mark.parametrize("allocator", ["mimalloc-v2", "mimalloc-v3"])
def test_mimalloc_commit_rises_with_the_allocation_and_live_is_absent(allocator: str) -> None:
    seen = _run(allocator)
    rise = _field(seen["during"], "current_commit") - _field(seen["before"], "current_commit")
    assert rise > 30 * MB  # mimalloc 2 commits in 32 MiB steps
    assert "live" in seen["during"]["malloc"]["absent"]
    assert "awaiting_purge" in seen["during"]["malloc"]["absent"]
    if allocator == "mimalloc-v3":
        assert _field(seen["during"], "committed") >= _field(seen["before"], "committed") + 40 * MB
        assert _field(seen["during"], "reserved") >= _field(seen["during"], "committed")
    else:
        assert "committed" in seen["during"]["malloc"]["absent"]


@pytest.mark.parametrize("allocator", list(LIBRARIES))
def test_python_blocks_are_counted_under_pymalloc_and_absent_under_malloc(allocator: str) -> None:
    assert _run(allocator)["during"]["python"]["counts"]["blocks"] > 1000
    under_malloc = _run(allocator, {"PYTHONMALLOC": "malloc"})["during"]["python"]
    assert "blocks" in under_malloc["absent"] and under_malloc["counts"] == {}
