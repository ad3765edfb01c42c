"""Shared fixtures of the report tests: a synthetic run and a site built from it once."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_run import build_site, write_run


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site of two synthetic studies (quick, default), built by a real `mkdocs build`."""
    return build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A results folder holding one synthetic run of the study `quick`."""
    out = tmp_path / "results"
    write_run(out)
    return out
