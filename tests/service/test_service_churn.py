"""service.churn: a bounded live set whose new buffers are really resident."""

from __future__ import annotations

import pytest

from service.churn import LiveSet, worker_rng
from service.config import (
    CONFIG_ENV,
    ChurnConfig,
    ConfigError,
    ServiceConfig,
    config_from_env,
    config_to_env,
)


def test_the_live_set_stays_at_its_bound_over_many_churns() -> None:
    config = ChurnConfig(live_buffers=300, min_bytes=4096, max_bytes=65536, free_per_call=40)
    live = LiveSet(config, worker_rng(1, 0))
    live.fill()
    assert live.count == 300
    for _ in range(200):
        result = live.churn()
        assert result.live_count == live.count == 300
        assert result.freed == result.allocated == 40
        assert 300 * 4096 <= live.nbytes <= 300 * 65536
        assert 40 * 4096 <= result.allocated_bytes <= 40 * 65536
    assert live.calls == 200
    assert live.nbytes == sum(len(b) for b in live._buffers)
    assert all(4096 <= len(b) <= 65536 for b in live._buffers)


def test_churn_fills_an_empty_live_set_first() -> None:
    live = LiveSet(ChurnConfig(live_buffers=10, free_per_call=10), worker_rng(1, 0))
    assert live.churn().live_count == 10


def test_the_stream_depends_on_seed_and_worker_index_only() -> None:
    config = ChurnConfig(live_buffers=50, free_per_call=5)

    def trace(seed: int, index: int) -> list[int]:
        live = LiveSet(config, worker_rng(seed, index))
        return [live.churn().allocated_bytes for _ in range(5)]

    assert trace(1, 0) == trace(1, 0)
    assert trace(1, 0) != trace(1, 1)
    assert trace(1, 0) != trace(2, 0)


_FILL_IN_A_FRESH_PROCESS = """
import json
from service.churn import ChurnConfig, LiveSet, worker_rng
from service.mallocinfo import rss_anon_bytes
live = LiveSet(ChurnConfig(live_buffers=400, min_bytes=60_000, max_bytes=64_000,
                           free_per_call=1), worker_rng(1, 0))
before = rss_anon_bytes()
live.fill()
grown = rss_anon_bytes() - before
written = all(b[0] != 0 and b[-1] == b[0] for b in live._buffers)
nbytes = live.nbytes
live.clear()
print(json.dumps({"grown": grown, "nbytes": nbytes, "written": written, "after": live.count}))
"""


def test_new_buffers_are_written_so_their_pages_are_resident() -> None:
    # A fresh interpreter: in the test process, memory freed by earlier tests may still be
    # resident and be reused, hiding the growth being measured.
    import json
    import subprocess
    import sys

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
    with pytest.raises(ConfigError, match="free_per_call"):
        ChurnConfig(live_buffers=5, free_per_call=6)
    with pytest.raises(ConfigError, match="churn.live_buffers must be an integer"):
        ServiceConfig.from_dict({"churn": {"live_buffers": "many"}})
    with pytest.raises(ConfigError, match="python_malloc"):
        ServiceConfig.from_dict({"python_malloc": "tcmalloc"})


def test_the_config_travels_through_the_environment() -> None:
    section = {"workers": 4, "rate": 200.0, "churn": {"live_buffers": 7, "free_per_call": 2}}
    config = config_from_env({CONFIG_ENV: config_to_env(section)})
    assert config.churn == ChurnConfig(live_buffers=7, free_per_call=2)
    assert config_from_env({}) == ServiceConfig()
    with pytest.raises(ConfigError, match="not valid JSON"):
        config_from_env({CONFIG_ENV: "{"})
