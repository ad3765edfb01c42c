"""Fixtures of the load generator tests: tiny loopback servers in their own processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loadgen_support import loopback_server


@pytest.fixture(scope="module")
def fast_server() -> Iterator[str]:
    with loopback_server() as (url, _):
        yield url


@pytest.fixture(scope="module")
def slow_server() -> Iterator[str]:
    """Every response takes 0.3 s: a service far slower than the schedule."""
    with loopback_server(delay=0.3) as (url, _):
        yield url
