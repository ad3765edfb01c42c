"""The report engine: result tables in, article material out. Knows nothing of MkDocs.

    site = Site(Path("results"))
    for src, study in site.article_pages().items(): ...
    markdown = site.render("index.md", template_text)

The MkDocs plugin (bench.mkdocs_plugin) is a thin adapter over Site. The names below are
loaded on first use: the terminal's summary (bench.report.headline) reads runs through this
package on a benchmark host, which installs no chart or site tooling (the `site` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.report.errors import ReportError

if TYPE_CHECKING:
    from bench.report.site import HOME, RUNS_PAGE, Site

__all__ = ["HOME", "RUNS_PAGE", "ReportError", "Site"]


def __getattr__(name: str) -> Any:
    if name in ("HOME", "RUNS_PAGE", "Site"):
        from bench.report import site

        return getattr(site, name)
    raise AttributeError(f"module 'bench.report' has no attribute {name!r}")
