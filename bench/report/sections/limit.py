"""Under a memory limit: workers killed at the cap, and the requests they took with them.

Sentence {{ say.memory_limit }}, table {{ table.memory_limit }}, both from one `limit_run`
(bench.report.limit holds the model). Applies when the spec set a memory limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.limit import LimitRun, limit_run, limit_table
from bench.report.prose import limit
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section

__all__ = ["LimitSection"]


@dataclass(frozen=True)
class Limit:
    run: Run
    res: Results
    missing: list[tuple[str, str]]

    @cached_property
    def limited(self) -> LimitRun | None:
        return limit_run(self.run)


class LimitSection(Section[Limit]):
    name = "limit"
    title = "Under a memory limit"
    try_next = ("the service under a memory limit", "specs/memory-limit.yaml")

    def applies(self, run: Run) -> bool:
        return any(
            r.get("experiment") == "service" and r.get("memory_limit_bytes") is not None
            for r in run.summary
        )

    def compute(self, loaded: Loaded) -> Limit:
        return Limit(loaded.run, loaded.res, loaded.missing)

    def sentences(self, data: Limit) -> Entries:
        return {
            "memory_limit": lambda: limit.memory_limit(
                data.limited,
                workers=int(specview.get(data.run.spec, "service.workers")),
                ranked=data.res.names,
                missing=data.missing,
            )
        }

    def tables(self, data: Limit, prefix: str) -> Entries:
        return {"memory_limit": lambda: limit_table(data.limited)}
