"""The report engine: result tables in, article material out. Knows nothing of MkDocs.

    site = Site(Path("results"))
    for src, study in site.article_pages().items(): ...
    markdown = site.render("index.md", template_text)

The MkDocs plugin (bench.mkdocs_plugin) is a thin adapter over Site.

Layout: `sections/` holds the article, one module per section in page order (the registry is
`sections.SECTIONS`), each a `section.Section` over the loaded run (`section.Loaded`) that
holds its own model, sentences, charts, captions and tables; a section too large for one module
is a package of parts (`sections/leak/`, `sections/knobs/`: `model`, `words`, `chart`). The
core the sections share: `runfolders` (finding and loading runs), `aggregate` (the per-allocator
model), `stats` (means, intervals, ties, ranks), `units`, `recorded_method` (the method as the
run recorded it), `live` (the live payload), `series`, `specview`, `versions`, `experiment`
(the spec and per-allocator tables several sections show), `recycled` (which allocators recycle
their workers); the words and figures more than one part draws on: `prose/` (`rankings`, the
shared wording of ranks and ties; `memory`, the memory sentences of the headline, the
staircase, the fingerprints and the guidance) and `charts/` (`figure`, what every chart shares;
`memory` and `throughput`, drawn by sections and the comparison page alike). Pages: `site` (the
plan and rendering), `study` (one study's material), `render` (placeholders), `notes`
(banners), `pages/compare` (two runs side by side, from `changes`, which `allocstudy compare`
prints too), `headline_table` (the headline table of the terminal, the README and `show`),
`reference` (the committed reference runs), `specdoc` (the spec format's tables); helpers
`datatable` and `svg` (HTML tables, inline SVG), `errors`, `lockcheck` (package versions
against constraints.txt), `hostkinds` (repeats on unlike hosts). The names below are loaded on
first use: the terminal's summary (bench.report.headline_table) reads runs through this package
on a benchmark host, which installs no chart or site tooling (the `site` extra)."""

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
