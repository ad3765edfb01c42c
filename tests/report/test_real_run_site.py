"""The site built from a real tiny run (made by the runner in this test session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitecheck import build_and_check

pytestmark = pytest.mark.real_run


def test_site_from_a_real_run_quotes_the_runs_own_numbers(tiny_run: Path, tmp_path: Path):
    build_and_check(tiny_run.parent.parent, tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert tiny_run.name in index  # provenance names the run
    assert "libjemalloc" in index  # the allocator proven loaded is shown
