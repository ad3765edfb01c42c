"""Debian's chromium as Playwright drives it, headless and offline: one place for the flags.

Used by scripts/readme_picture.py and the browser tests (tests/site/conftest.py): nothing is
downloaded (`playwright install` is not needed), and the browser makes no request of its own
(updates, metrics), so a page's every request is one the site asked for.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CHROMIUM", "FLAGS"]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
