"""The MkDocs plugin: a thin adapter that wires MkDocs events to the report engine.

All the work lives in bench.report (which never imports MkDocs): this file only says which
files exist, hands each page's Markdown to the engine, and turns engine errors into
PluginError. Material for MkDocs announced its end of life, so the engine is kept
independent of any one site generator.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from mkdocs.config import config_options as c
from mkdocs.config.base import Config
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.pages import Page

from bench.report import RUNS_PAGE, ReportError, Site
from bench.report.errors import BadRunError
from bench.report.pages.compare import COMPARE_PAGE

__all__ = ["AllocStudyConfig", "AllocStudyPlugin"]

ASSETS = Path(__file__).with_name("assets")
ASSET_DIR = "assets/allocstudy"

log = logging.getLogger("mkdocs.plugins.allocstudy")


class AllocStudyConfig(Config):
    results = c.Type(str, default="results")  # ALLOCSTUDY_RESULTS overrides it
    # compact runs committed with the project, shown while results/ holds none
    # (ALLOCSTUDY_REFERENCE overrides it; empty: none)
    reference = c.Type(str, default="reference")
    template = c.Type(str, default="_article.md")  # in docs_dir; one page per study
    default_study = c.Type(str, default="default")
    specs = c.Type(str, default="specs")  # watched by `mkdocs serve`
    # leave out runs whose files cannot be read, one log line each, instead of failing
    skip_bad_runs = c.Type(bool, default=False)
    # two runs (relative to the results folder) for a comparison page; none: no page
    compare = c.ListOfItems(c.Type(str), default=[])


def _plugin_error(exc: ReportError) -> PluginError:
    """The engine's error as MkDocs prints it: one line, `ERROR - allocstudy: ...`."""
    hint = (
        "; skip_bad_runs: true in the allocstudy plugin's config builds the site without it"
        if isinstance(exc, BadRunError)
        else ""
    )
    return PluginError(f"allocstudy: {exc}{hint}")


class AllocStudyPlugin(BasePlugin[AllocStudyConfig]):
    """One article page per study, an index of runs, and the run's Arrow files."""

    def __init__(self) -> None:
        self.site: Site | None = None
        self.root = Path.cwd()

    def _results(self) -> Path:
        raw = os.environ.get("ALLOCSTUDY_RESULTS") or self.config.results
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.root / path

    def _reference(self) -> Path | None:
        raw = os.environ.get("ALLOCSTUDY_REFERENCE", self.config.reference)
        if not raw:
            return None
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.root / path

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig:
        self.root = Path(config.config_file_path or "mkdocs.yml").resolve().parent
        try:
            self.site = Site(
                self._results(),
                roots=[self.root],
                default_study=self.config.default_study,
                use_directory_urls=config.use_directory_urls,
                skip_bad_runs=self.config.skip_bad_runs,
                compare=self.config.compare,
                reference=self._reference(),
            )
        except ReportError as exc:
            raise _plugin_error(exc) from None
        for skipped in self.site.skipped:
            # info, not a warning: the user asked for the skip, so a strict build must pass
            log.info(f"allocstudy: left out the run {skipped.path}: {skipped.problem}")
        config.extra_css.append(f"{ASSET_DIR}/allocstudy.css")
        config.extra_javascript.append(f"{ASSET_DIR}/allocstudy.js")
        return config

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files:
        assert self.site is not None
        template = files.get_file_from_path(self.config.template)
        if template is None:
            raise PluginError(
                f"allocstudy: the article template {self.config.template} is "
                f"missing from {config.docs_dir}"
            )
        text = template.content_string
        files.remove(template)
        try:
            pages = {src: text for src in self.site.article_pages()}
            pages[RUNS_PAGE] = self.site.runs_page()
            if (comparison := self.site.compare_page()) is not None:
                pages[COMPARE_PAGE] = comparison
            for src, content in pages.items():
                if files.get_file_from_path(src) is not None:
                    raise ReportError(f"docs/{src} would hide a generated page; remove it")
                files.append(File.generated(config, src, content=content))
            for dest, path in self.site.data_files().items():
                files.append(
                    File.generated(
                        config, dest, abs_src_path=str(path), inclusion=InclusionLevel.NOT_IN_NAV
                    )
                )
        except ReportError as exc:
            raise _plugin_error(exc) from None
        for asset in sorted(ASSETS.iterdir()):
            if asset.is_file():
                files.append(
                    File.generated(config, f"{ASSET_DIR}/{asset.name}", abs_src_path=str(asset))
                )
        return files

    def on_page_markdown(
        self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str:
        assert self.site is not None
        src = page.file.src_uri
        label = (
            f"{src} (generated from {self.config.template})"
            if src in self.site.article_pages()
            else f"docs/{src}"
        )
        try:
            return self.site.render(src, markdown, page_label=label)
        except ReportError as exc:
            raise _plugin_error(exc) from None

    def on_serve(self, server: Any, *, config: MkDocsConfig, builder: Any) -> Any:
        server.watch(str(self._results()))
        specs = self.root / self.config.specs
        if specs.is_dir():
            server.watch(str(specs))
        return server
