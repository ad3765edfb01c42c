"""The report engine: result tables in, article material out. Knows nothing of MkDocs.

    site = Site(Path("results"))
    for src, study in site.article_pages().items(): ...
    markdown = site.render("index.md", template_text)

The MkDocs plugin (bench.mkdocs_plugin) is a thin adapter over Site.
"""

from bench.report.errors import ReportError
from bench.report.site import HOME, RUNS_PAGE, Site

__all__ = ["HOME", "RUNS_PAGE", "ReportError", "Site"]
