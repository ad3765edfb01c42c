"""Fixtures of the service tests: real services, started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from service_support import start

from service.launcher import ServiceProcess


@pytest.fixture(scope="session")
def glibc_service() -> Iterator[ServiceProcess]:
    service = start("glibc", workers=2)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def jemalloc_service() -> Iterator[ServiceProcess]:
    service = start("jemalloc", workers=3)
    yield service
    service.stop()
