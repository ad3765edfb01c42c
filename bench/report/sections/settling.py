"""Settling: the return timers each allocator runs, and how long each took to give back.

Sentences {{ say.timers }}, {{ say.settling }}; table {{ table.timers }} (bench.report.settling
holds the model and its words).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import settling
from bench.report.aggregate import Results
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section

__all__ = ["SettlingSection"]


@dataclass(frozen=True)
class Settling:
    run: Run
    full: Results
    res: Results


class SettlingSection(Section[Settling]):
    name = "settling"
    title = "Keep versus return"

    def compute(self, loaded: Loaded) -> Settling:
        return Settling(loaded.run, loaded.full, loaded.res)

    def sentences(self, data: Settling) -> Entries:
        res = data.res
        return {
            "settling": lambda: " ".join(
                t for t in (settling.settling_sentence(res), settling.idle_sentence(res)) if t
            ),
            "timers": lambda: settling.timers_sentence(data.run, res),
        }

    def tables(self, data: Settling, prefix: str) -> Entries:
        return {"timers": lambda: settling.timers_table(data.run, data.full)}
