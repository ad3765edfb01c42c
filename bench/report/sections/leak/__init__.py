"""Leak or retention: did the program hold the growth, or did the allocator keep what was freed.

Chart {{ chart.leak }}, sentence {{ say.leak }}, table {{ table.leak }}; all three from one
`leak_results` per run. The sentence leaves out the A/A duplicate, which would say its
allocator's verdict twice; the table and chart show it.

Parts: `model` (the two sides at three moments, the verdict, the table), `words` (the
sentences, one per verdict), `chart` (the stacked bars and their caption); here, the section.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bench.report.aggregate import Results
from bench.report.charts.figure import Names
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.leak import chart, words
from bench.report.sections.leak.model import LeakResult, leak_results, leak_table

__all__ = ["LeakSection"]


@dataclass(frozen=True)
class Leak:
    run: Run
    full: Results

    @cached_property
    def results(self) -> dict[str, LeakResult]:
        """Every allocator's leak result, the A/A duplicate too (the chart, the table)."""
        return leak_results(self.run, list(self.full.names))

    @cached_property
    def said(self) -> dict[str, LeakResult]:
        """The same without the A/A duplicate, for the sentence."""
        full = self.full
        return {n: r for n, r in self.results.items() if not (full.aa and n == full.aa.again)}


class LeakSection(Section[Leak]):
    name = "leak"
    title = "Leak or retention?"

    def compute(self, loaded: Loaded) -> Leak:
        return Leak(loaded.run, loaded.full)

    def sentences(self, data: Leak) -> Entries:
        return {"leak": lambda: words.leak_or_retention(data.said)}

    def charts(self, data: Leak) -> Entries:
        names = Names.of(data.full)
        return {"leak": lambda: chart.leak(data.results, names)}

    def tables(self, data: Leak, prefix: str) -> Entries:
        return {"leak": lambda: leak_table(data.results)}
