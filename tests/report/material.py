"""One synthetic run's article material (values, sentences, charts, tables), for the tests.

A module of its own, like synthetic_run and sitecheck: every test folder has a conftest.py.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthetic_run import write_run

from bench.report.aggregate import Results
from bench.report.live import LivePayload
from bench.report.runfolders import Freshness, Run, find_studies
from bench.report.section import Entries, Loaded
from bench.report.section import Material as Collected
from bench.report.sections import SECTIONS
from bench.report.study import StudyView

__all__ = ["Material", "cells", "charts", "material", "named_values", "sentences", "text_of"]


@dataclass
class Material:
    """Everything a page of the run can quote, computed the way the site computes it."""

    view: StudyView

    @property
    def values(self) -> dict[str, str]:
        return self.view.values

    def say(self, name: str) -> str:
        """A sentence as a reader sees it (Markdown-safe entities decoded)."""
        return html.unescape(self.view.sentences[name]())

    def chart(self, name: str) -> str:
        return self.view.charts[name]()

    def table(self, name: str) -> str:
        return self.view.tables("")[name]()

    def page(self, template: str) -> str:
        """The article template (or any text) rendered for this study, as plain text."""
        from bench.report import Site

        site = Site(self.view.study.path.parent)
        return text_of(site.render("index.md", template))


def material(tmp_path: Path, **kw: Any) -> Material:
    """Write a synthetic run (write_run's keywords) and return its material."""
    results = tmp_path / "results"
    write_run(results, **kw)
    (study,) = find_studies(results)
    return Material(StudyView(study, [tmp_path]))


def text_of(markup: str) -> str:
    """HTML or Markdown with tags removed and entities decoded (what a reader sees)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", markup))


def cells(table: str) -> list[list[str]]:
    """The rows of an HTML table as lists of cell texts (header row first)."""
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in rows
    ]


def _collected(
    run: Run, res: Results, live: LivePayload | None = None, fresh: Freshness | None = None
) -> Collected:
    """Every section's material for a run and results the test made (perhaps altered)."""
    return Collected(Loaded(run, res, live=live, fresh=fresh), SECTIONS)


def sentences(run: Run, res: Results, live: LivePayload | None = None) -> Entries:
    """Every {{ say.<name> }} of these results, as a page would collect them."""
    return _collected(run, res, live).sentences


def charts(run: Run, res: Results, live: LivePayload | None = None) -> Entries:
    """Every {{ chart.<name> }} of these results that a page shows: those of the sections
    the run made the measurement of (a page leaves the others out)."""
    m = _collected(run, res, live)
    left = {name for s in m.left_off() for name in s.charts(m.data(s))}
    return {name: chart for name, chart in m.charts.items() if name not in left}


def named_values(
    run: Run, res: Results, fresh: Freshness, live: LivePayload | None = None
) -> dict[str, str]:
    """Every {{ v.<name> }} of these results, as a page would collect them."""
    return _collected(run, res, live, fresh).values
