"""Provenance: where the run came from, and the proof each allocator really served malloc.

Tables {{ table.provenance }}, {{ table.allocator_provenance }}; sentence {{ say.evidence }}.
The run's own record is the identity section's values (bench.report.sections.identity).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import provenance
from bench.report.aggregate import Results
from bench.report.lockcheck import LockCheck
from bench.report.prose import trust
from bench.report.run import Freshness, Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.identity import identity_values

__all__ = ["ProvenanceSection"]


@dataclass(frozen=True)
class Provenance:
    run: Run
    full: Results
    fresh: Freshness
    lock: LockCheck


class ProvenanceSection(Section[Provenance]):
    name = "provenance"
    title = "Provenance"

    def compute(self, loaded: Loaded) -> Provenance:
        return Provenance(loaded.run, loaded.full, loaded.freshness, loaded.lock)

    def sentences(self, data: Provenance) -> Entries:
        return {"evidence": lambda: trust.evidence(data.full)}

    def tables(self, data: Provenance, prefix: str) -> Entries:
        values = identity_values(data.run, data.fresh)
        return {
            "provenance": lambda: provenance.provenance_table(
                data.run, data.fresh, values, data.lock
            ),
            "allocator_provenance": lambda: provenance.allocator_provenance_table(data.full),
        }
