"""What the knobs did: each variant (a stock allocator with one setting changed) against its base.

Sentences {{ say.knobs }}, {{ say.knobs_read_back }}; table {{ table.knobs }}. A variant that
only recycles turns no knob, so this section sees the run without the recycled ones
(bench.report.recycled). Applies when the spec lists a variant.

Parts: `model` (each variant's report against its base, the read-back, and the table),
`words` (the sentences); here, the section.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import recycled
from bench.report.aggregate import Results
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.knobs import model, words

__all__ = ["KnobsSection"]


@dataclass(frozen=True)
class Knobs:
    #: the whole run without the variants that only recycle
    tuned: Results


class KnobsSection(Section[Knobs]):
    name = "knobs"
    title = "What the knobs did"
    try_next = (
        "the settings operators change, each against its stock allocator",
        "specs/knobs.yaml",
    )

    def applies(self, run: Run) -> bool:
        """Whether the spec lists a variant that turns a knob (one that only recycles does not)."""
        how = recycled.recycling_of(run.spec)
        return any(
            isinstance(e, dict)
            and e.get("base")
            and (e.get("env") or how.get(str(e.get("name"))) == how.get(str(e["base"])))
            for e in run.spec.get("allocators") or []
        )

    def compute(self, loaded: Loaded) -> Knobs:
        return Knobs(recycled.without_recycled(loaded.run, loaded.full))

    def sentences(self, data: Knobs) -> Entries:
        return {
            "knobs": lambda: words.knobs(data.tuned),
            "knobs_read_back": lambda: words.read_back(data.tuned),
        }

    def tables(self, data: Knobs, prefix: str) -> Entries:
        return {"knobs": lambda: model.knobs_table(data.tuned)}
