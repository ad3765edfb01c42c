"""What it means: which allocator to pick for what, and what each choice costs.

Sentences {{ say.guidance }}, {{ say.guidance_costs }}.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.aggregate import Results
from bench.report.prose import guidance
from bench.report.section import Entries, Loaded, Section

__all__ = ["GuidanceSection"]


@dataclass(frozen=True)
class Guidance:
    res: Results


class GuidanceSection(Section[Guidance]):
    name = "guidance"
    title = "What it means"

    def compute(self, loaded: Loaded) -> Guidance:
        return Guidance(loaded.res)

    def sentences(self, data: Guidance) -> Entries:
        return {
            "guidance": lambda: guidance.guidance(data.res),
            "guidance_costs": lambda: guidance.guidance_costs(data.res),
        }
