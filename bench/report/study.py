"""One study's article material, computed lazily from its current run.

A StudyView owns everything a page can quote about one study: named values, sentences,
charts and tables, collected from the article's sections (bench.report.sections, in page
order) over one loaded run (bench.report.section.Loaded). Charts render only when a page
uses them, so a page that quotes two numbers does not pay for five SVGs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from bench.report import notes
from bench.report.aggregate import Results, aggregate
from bench.report.runfolders import Freshness, Run, Study, load_run
from bench.report.section import Loaded, Material
from bench.report.sections import SECTIONS

__all__ = ["StudyView"]


class StudyView:
    """The quotable material of one study (its current run)."""

    def __init__(self, study: Study, roots: Sequence[Path]):
        self.study = study
        self.roots = list(roots)

    @cached_property
    def run(self) -> Run:
        return load_run(self.study.current)

    @property
    def run_key(self) -> str:
        return f"{self.study.name}/{self.study.current.run_id}"

    @cached_property
    def results(self) -> Results:
        return aggregate(self.run)

    @cached_property
    def loaded(self) -> Loaded:
        return Loaded(self.run, self.results, roots=self.roots, data_dir=self.data_dir())

    @cached_property
    def material(self) -> Material:
        return Material(self.loaded, SECTIONS)

    @property
    def freshness(self) -> Freshness:
        return self.loaded.freshness

    @property
    def values(self) -> dict[str, str]:
        return self.material.values

    @property
    def sentences(self) -> dict[str, Callable[[], str]]:
        return self.material.sentences

    @property
    def charts(self) -> dict[str, Callable[[], str]]:
        return self.material.charts

    def data_dir(self) -> str:
        """Where this run's Arrow files go in the site (forward slashes, no leading slash)."""
        return f"data/{self.study.name}/{self.study.current.run_id}"

    def tables(self, prefix: str) -> dict[str, Callable[[], str]]:
        """Tables of this study; `prefix` leads from the page to the site root (for links)."""
        return self.material.tables(prefix)

    def banners(self, runs_used: Sequence[str] = ()) -> list[str]:
        return notes.banners(self.study, self.run, self.freshness, self.results, runs_used)
