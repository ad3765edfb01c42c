"""Recycling workers: each recycled allocator against itself without recycling.

Sentence {{ say.recycling }}, table {{ table.recycling }} (bench.report.recycling holds the
pairs). Applies when the spec recycles a worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import recycling as rec
from bench.report.aggregate import Results
from bench.report.prose import recycling
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section

__all__ = ["RecyclingSection"]


@dataclass(frozen=True)
class Recycling:
    run: Run
    full: Results


class RecyclingSection(Section[Recycling]):
    name = "recycling"
    title = "Recycling workers"
    try_next = ("workers recycled after so many requests", "specs/recycling.yaml")

    def applies(self, run: Run) -> bool:
        return any(r is not None for r in rec.recycling_of(run.spec).values())

    def compute(self, loaded: Loaded) -> Recycling:
        return Recycling(loaded.run, loaded.full)

    def sentences(self, data: Recycling) -> Entries:
        # variants against their base: the whole run
        return {"recycling": lambda: recycling.recycling(data.run, data.full)}

    def tables(self, data: Recycling, prefix: str) -> Entries:
        return {"recycling": lambda: rec.recycling_table(data.run, data.full)}
