"""service.churn: a live set built by traffic, bounded, deterministic, and really resident."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.spec import ChurnSpec
from service.churn import LiveSet, calls_to_fill, short_pool, worker_rng
from service.config import (
    CONFIG_ENV,
    ChurnConfig,
    ConfigError,
    ServiceConfig,
    config_from_env,
    config_to_env,
)

GROWING = ChurnConfig(
    live_buffers=600,
    initial_buffers=20,
    min_bytes=4096,
    max_bytes=65536,
    alloc_per_call=16,
    long_lived_share=0.25,
    short_lifetime_s=0.3,
)
TICK = 0.1  # the test clock: one churn call every 0.1 s, 10 calls a second


def _payload(live: LiveSet) -> int:
    short = sum(len(entry[2]) for entry in live._short)
    return sum(len(b) for b in live._long) + short


def _calls(live: LiveSet, n: int, start: float = 0.0) -> list:
    return [live.churn(start + i * TICK) for i in range(n)]


def test_the_live_set_starts_small_and_grows_with_calls_until_its_bound() -> None:
    live = LiveSet(GROWING, worker_rng(1, 0))
    live.fill()
    assert live.count == live.long_count == 20
    counts = [r.live_count for r in _calls(live, 400)]
    assert counts[10] < counts[50] < counts[100]  # grows with traffic
    assert max(counts) <= GROWING.live_buffers  # never past the bound
    assert counts[-1] >= 0.95 * GROWING.live_buffers  # and gets there
    first_full = next(i for i, c in enumerate(counts) if c >= 0.95 * GROWING.live_buffers)
    expected = calls_to_fill(GROWING, 1 / TICK)
    assert 0.6 * expected <= first_full <= 1.4 * expected  # the estimate the docs quote


def test_short_lived_buffers_die_and_pins_are_evicted_only_at_the_bound() -> None:
    live = LiveSet(GROWING, worker_rng(2, 0))
    live.fill()
    results = _calls(live, 300)
    assert all(r.allocated == GROWING.alloc_per_call for r in results)
    assert sum(r.freed for r in results[:20]) > 0  # short-lived ones die from the start
    assert all(r.evicted == 0 for r in results if r.live_count < GROWING.live_buffers - 16)
    assert sum(r.evicted for r in results) > 0  # at the bound, random pins go
    assert 0 < live.short_count <= GROWING.alloc_per_call * 7  # lives of 0..0.6 s, 10 calls/s
    assert live.nbytes == _payload(live)  # the byte count the service reports is the truth
    assert all(4096 <= len(b) <= 65536 for b in live._long)


def test_short_lived_buffers_live_their_time_and_expire_on_the_next_request() -> None:
    config = dataclasses.replace(GROWING, long_lived_share=0.0, initial_buffers=0)
    live = LiveSet(config, worker_rng(3, 0))
    counts = [r.live_count for r in _calls(live, 50)]
    expected = short_pool(config, 1 / TICK)  # 10 calls/s x 16 x 0.3 s = 48
    assert 0.7 * expected <= sum(counts[20:]) / 30 <= 1.3 * expected
    assert live.long_count == 0
    held = live.nbytes
    last = 49 * TICK
    assert live.expire(last) == (0, 0)  # nothing made at the last call has run out yet
    count, nbytes = live.expire(last + 10.0)  # a request long after: all short-lived are gone
    assert live.count == 0 and live.nbytes == 0 and nbytes == held and count > 0


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    share=st.floats(0.0, 1.0),
    alloc=st.integers(1, 8),
    life=st.floats(0.05, 3.0),
)
def test_the_bound_holds_for_any_knobs(seed: int, share: float, alloc: int, life: float) -> None:
    config = ChurnConfig(
        live_buffers=alloc + 5,  # even when the short-lived alone would overflow it
        initial_buffers=3,
        min_bytes=16,
        max_bytes=64,
        alloc_per_call=alloc,
        long_lived_share=share,
        short_lifetime_s=life,
    )
    live = LiveSet(config, worker_rng(seed, 0))
    live.fill()
    for i in range(60):
        result = live.churn(i * TICK)
        assert result.live_count <= config.live_buffers
        assert result.live_bytes == live.nbytes == _payload(live)


def test_the_stream_depends_on_seed_and_worker_index_only() -> None:
    def trace(seed: int, index: int) -> list[tuple[int, int, int]]:
        live = LiveSet(GROWING, worker_rng(seed, index))
        live.fill()
        return [(r.allocated_bytes, r.freed, r.live_count) for r in _calls(live, 60)]

    assert trace(1, 0) == trace(1, 0)
    assert trace(1, 0) != trace(1, 1)
    assert trace(1, 0) != trace(2, 0)


def test_calls_to_fill_is_infinite_without_pins_and_zero_when_already_full() -> None:
    assert calls_to_fill(dataclasses.replace(GROWING, long_lived_share=0.0), 10) == float("inf")
    full = dataclasses.replace(GROWING, initial_buffers=GROWING.live_buffers)
    assert calls_to_fill(full, 10) == 0.0


_FILL_IN_A_FRESH_PROCESS = """
import json
from service.churn import ChurnConfig, LiveSet, worker_rng
from service.process.memory import rss_anon_bytes
live = LiveSet(ChurnConfig(live_buffers=400, initial_buffers=400, min_bytes=60_000,
                           max_bytes=64_000, alloc_per_call=1), worker_rng(1, 0))
before = rss_anon_bytes()
live.fill()
grown = rss_anon_bytes() - before
written = all(b[0] != 0 and b[-1] == b[0] for b in live._long)
nbytes = live.nbytes
live.clear()
print(json.dumps({"grown": grown, "nbytes": nbytes, "written": written, "after": live.count}))
"""


def test_new_buffers_are_written_so_their_pages_are_resident() -> None:
    # A fresh interpreter: in the test process, memory freed by earlier tests may still be
    # resident and be reused, hiding the growth being measured.
    out = subprocess.run(
        [sys.executable, "-c", _FILL_IN_A_FRESH_PROCESS],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(out.stdout)
    assert result["grown"] >= 0.9 * result["nbytes"]
    assert result["written"] and result["after"] == 0


def test_config_bounds_are_checked_with_the_field_name() -> None:
    with pytest.raises(ConfigError, match="min_bytes"):
        ChurnConfig(min_bytes=10, max_bytes=5)
    with pytest.raises(ConfigError, match="initial_buffers"):
        ChurnConfig(live_buffers=5, initial_buffers=6, alloc_per_call=1)
    with pytest.raises(ConfigError, match="short_lifetime_s must be a number of seconds"):
        ServiceConfig.from_dict({"churn": {"short_lifetime_s": 0}})
    with pytest.raises(ConfigError, match="churn.live_buffers must be an integer"):
        ServiceConfig.from_dict({"churn": {"live_buffers": "many"}})
    with pytest.raises(ConfigError, match="long_lived_share must be a number from 0 to 1"):
        ServiceConfig.from_dict({"churn": {"long_lived_share": 2}})
    with pytest.raises(ConfigError, match="python_malloc"):
        ServiceConfig.from_dict({"python_malloc": "tcmalloc"})


def test_the_config_travels_through_the_environment() -> None:
    section = {"workers": 4, "rate": 200.0, "churn": {"live_buffers": 70, "alloc_per_call": 2}}
    config = config_from_env({CONFIG_ENV: config_to_env(section)})
    assert config.churn == ChurnConfig(live_buffers=70, alloc_per_call=2)
    assert config_from_env({}) == ServiceConfig()
    with pytest.raises(ConfigError, match="not valid JSON"):
        config_from_env({CONFIG_ENV: "{"})


def test_the_spec_model_and_the_service_config_share_names_and_defaults() -> None:
    spec_defaults = ChurnSpec().model_dump()
    config_defaults = dataclasses.asdict(ChurnConfig())
    assert spec_defaults == config_defaults
