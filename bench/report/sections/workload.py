"""Why memory climbs: what the service's requests do, and what was measured (the subject).

Sentences: {{ say.workload }}, {{ say.subject }} (bench.report.prose.workload words them).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.prose import workload
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section

__all__ = ["WorkloadSection"]


@dataclass(frozen=True)
class Workload:
    run: Run


class WorkloadSection(Section[Workload]):
    name = "workload"
    title = "Why memory climbs"

    def compute(self, loaded: Loaded) -> Workload:
        return Workload(loaded.run)

    def sentences(self, data: Workload) -> Entries:
        return {
            "workload": lambda: workload.workload(data.run),
            "subject": lambda: workload.subject(data.run),
        }
