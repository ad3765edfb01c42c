"""service.idlework: an idle probe's allocator calls, and why they matter, for real.

The real test runs jemalloc in its own interpreter with a short decay: freed pages stay dirty
through an idle with no calls, however long past the decay time, and are purged once the
probe's calls reach the allocator; blocks small enough for its thread cache do not do it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from service_support import preload_env

from bench.spec.models import IdleProbeSpec
from service.config import ConfigError, ServiceConfig
from service.idlework import allocator_calls

ROOT = Path(__file__).resolve().parents[2]
MB = 1_000_000


def test_allocator_calls_counts_the_pairs_it_made_and_none_when_asked_for_none() -> None:
    assert allocator_calls(64, 65536) == 64
    assert allocator_calls(0, 65536) == allocator_calls(10, 0) == 0


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"blocks": 0}, "idle_probe.blocks must be a whole number above 0, at most 4096, not 0"),
        ({"blocks": True}, "idle_probe.blocks must be a whole number above 0"),
        ({}, "idle_probe.blocks must be a whole number above 0, at most 4096, not None"),
        ({"blocks": 1, "block_bytes": 2**30}, "idle_probe.block_bytes must be a whole number"),
        ([256], "idle_probe must be a mapping, not [256]"),
    ],
)
def test_a_bad_idle_probe_is_refused_naming_the_field(section: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ServiceConfig.from_dict({"idle_probe": section})


def test_the_spec_and_the_service_agree_on_the_default_block() -> None:
    spec = IdleProbeSpec(blocks=256)
    config = ServiceConfig.from_dict({"idle_probe": spec.model_dump()})
    assert config.idle_probe_block_bytes == spec.block_bytes == 64 * 1024
    assert spec.describe() == "256 malloc/free pairs of 64 KiB each"


# 50 MB of 50 KB blocks freed (jemalloc keeps them as dirty pages), a wait well past the 300 ms
# decay with no call at all, then a round of calls every 20 ms until the dirty pages are gone
# (or 100 rounds, about 2 s). The decay counts the pages' age from the first call that runs it
# after their free, not from the free: they go over the next 300 ms, in steps.
_DECAY = """
import ctypes, json, sys, time
from service.allocators.stats import internal_record
from service.idlework import allocator_calls
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
def dirty():
    return internal_record()["malloc"]["bytes"]["dirty"]
blocks = [libc.malloc(50_000) for _ in range(1000)]
for b in blocks:
    ctypes.memset(b, 1, 50_000)
for b in blocks:
    libc.free(b)
freed = dirty()
time.sleep(1.5)
waited = dirty()
size = int(sys.argv[1])
rounds = []
for _ in range(100):
    allocator_calls(256, size)
    rounds.append(dirty())
    if rounds[-1] < 5_000_000:
        break
    time.sleep(0.02)
print(json.dumps({"freed": freed, "waited": waited, "rounds": rounds}))
"""


def _decay(block_bytes: int) -> dict[str, Any]:
    child = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    child.update(
        preload_env("jemalloc"),
        MALLOC_CONF="dirty_decay_ms:300,muzzy_decay_ms:0",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run(
        [sys.executable, "-c", _DECAY, str(block_bytes)],
        env=child,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_jemalloc_keeps_its_dirty_pages_until_the_probes_calls_reach_it() -> None:
    probed = _decay(64 * 1024)
    assert probed["freed"] > 40 * MB
    assert probed["waited"] > 40 * MB  # five decay times with no call: nothing purged
    assert probed["rounds"][-1] < 5 * MB  # the probe's calls ran the decay


def test_blocks_that_stay_in_jemallocs_thread_cache_do_not_run_its_decay() -> None:
    cached = _decay(1024)
    assert cached["waited"] > 40 * MB
    assert len(cached["rounds"]) == 100 and min(cached["rounds"]) > 40 * MB
