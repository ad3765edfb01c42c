"""service.allocators.heap: the program's live bytes as each allocator counts them, under
real preloads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from service_support import LIBRARIES, expected_library, preload_env

from service.allocators.heap import heap_record
from service.app import create_app
from service.config import ChurnConfig, ServiceConfig

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what we have
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {
    "glibc": "glibc mallinfo2 uordblks+hblkhd",
    "jemalloc": "jemalloc stats.allocated",
    "tcmalloc": "tcmalloc generic.current_allocated_bytes",
    "mimalloc-v2": "mimalloc mi_heap_visit_blocks (this thread's heap)",
    "mimalloc-v3": "mimalloc mi_heap_visit_blocks (main heap)",
}
MB = 1_000_000

# 50 MB in 1,000 bytearrays of 50 KB, counted before, while held, and after the free.
_ALLOCATE = """
import json
from service.allocators.heap import heap_record
from service.allocators.serving import malloc_library
before = heap_record()
held = [bytearray(50_000) for _ in range(1000)]
during = heap_record()
del held
after = heap_record()
print(json.dumps({"library": malloc_library(), "before": before, "during": during,
                  "after": after}))
"""


def _run(code: str, env: dict[str, str]) -> dict:
    child = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    child.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], env=child, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("python_malloc", ["pymalloc", "malloc"])
@pytest.mark.parametrize("allocator", list(LIBRARIES))
def test_malloc_in_use_follows_50_mb_allocated_and_freed(allocator: str, python_malloc: str):
    env = preload_env(allocator)
    if python_malloc == "malloc":
        env["PYTHONMALLOC"] = "malloc"
    seen = _run(_ALLOCATE, env)
    assert seen["library"] == expected_library(allocator)
    before, during, after = (seen[k] for k in ("before", "during", "after"))
    assert during["malloc_source"] == SOURCES[allocator]
    rise = during["malloc_in_use_bytes"] - before["malloc_in_use_bytes"]
    # 50 MB asked; size classes round each 50 KB block up (57 MB in jemalloc's and mimalloc's)
    assert 50 * MB <= rise <= 62 * MB, rise
    assert abs(after["malloc_in_use_bytes"] - before["malloc_in_use_bytes"]) < 2 * MB
    if python_malloc == "pymalloc":  # sys.getallocatedblocks() counts pymalloc's blocks only
        assert during["python_blocks"] - before["python_blocks"] >= 1000
    else:
        assert during["python_blocks"] == 0
    assert during["gc_objects"] > 0 and len(during["gc_counts"]) == 3


def test_the_count_is_the_allocator_that_serves_malloc_not_one_merely_loaded():
    # mimalloc's own symbols are there once it is loaded (jemalloc and tcmalloc cannot be
    # dlopen'ed late: static TLS), but malloc stays glibc's.
    mimalloc = preload_env("mimalloc-v2")["LD_PRELOAD"]  # skips when not installed
    code = f"""
import ctypes, json
ctypes.CDLL({mimalloc!r})
from service.allocators.heap import heap_record
print(json.dumps(heap_record()))
"""
    assert _run(code, {})["malloc_source"] == SOURCES["glibc"]


def test_mimalloc_3_counts_what_other_threads_allocate():
    preload = preload_env("mimalloc-v3")
    code = """
import json, threading
from service.allocators.heap import heap_record
before = heap_record()["malloc_in_use_bytes"]
held = []
worker = threading.Thread(target=lambda: held.extend(bytearray(50_000) for _ in range(400)))
worker.start(); worker.join()
print(json.dumps({"rise": heap_record()["malloc_in_use_bytes"] - before}))
"""
    assert 20 * MB <= _run(code, preload)["rise"] <= 26 * MB


def test_the_record_has_the_contract_keys_in_process():
    record = heap_record()
    assert list(record) == [
        "malloc_in_use_bytes",
        "malloc_source",
        "python_blocks",
        "gc_objects",
        "gc_counts",
    ]
    assert isinstance(record["malloc_in_use_bytes"], int) and record["malloc_source"]
    assert all(isinstance(n, int) for n in record["gc_counts"])


def test_the_synthetic_stats_carry_the_heap_record():
    config = ServiceConfig(churn=ChurnConfig(live_buffers=20, initial_buffers=20, max_bytes=8192))
    with TestClient(create_app(config)) as client:
        stats = client.get("/stats").json()
    assert stats["internal"]["malloc"]["family"] == "glibc"  # the allocator's own statistics
    assert stats["internal"]["malloc"]["bytes"]["live"] > 0
    heap = stats["heap"]
    assert heap["malloc_in_use_bytes"] > stats["live_bytes"]  # the live set is in it
    assert heap["python_blocks"] > 0 and heap["gc_objects"] > 0


def test_mimalloc_2_counts_the_calling_threads_heap_only_and_says_so():
    preload = preload_env("mimalloc-v2")
    code = """
import json, threading
from service.allocators.heap import heap_record
before = heap_record()
held = []
worker = threading.Thread(target=lambda: held.extend(bytearray(50_000) for _ in range(400)))
worker.start(); worker.join()
after = heap_record()
print(json.dumps({"rise": after["malloc_in_use_bytes"] - before["malloc_in_use_bytes"],
                  "source": after["malloc_source"]}))
"""
    seen = _run(code, preload)
    assert seen["source"].endswith("(this thread's heap)")
    assert abs(seen["rise"]) < 2 * MB  # another thread's 20 MB are not in this thread's heap
