"""Keep versus return: each allocator's fingerprint (peak against settled) and what it shed.

Sentences {{ say.fingerprints }}, {{ say.shed_ranking }}.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.prose import memory, rankings
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import Sample, shed_fraction
from bench.report.units import fmt_pct, fmt_seconds

__all__ = ["FingerprintsSection"]


@dataclass(frozen=True)
class Fingerprints:
    res: Results
    #: the share of its peak each allocator gave back by the end of idle
    shed: dict[str, Sample]
    missing: list[tuple[str, str]]
    #: how the idle is named in a sentence: "the idle" or its length
    idle_s: str


class FingerprintsSection(Section[Fingerprints]):
    name = "fingerprints"
    title = "Keep versus return"

    def compute(self, loaded: Loaded) -> Fingerprints:
        run, res = loaded.run, loaded.res
        shed = {
            n: r.given_back or Sample((f,), f, 0.0)
            for n, r in res.service.items()
            if (f := shed_fraction(r.peak.center, r.settled.center)) is not None
        }
        idle_s = (
            "the idle"
            if specview.get(run.spec, "service.idle_ends") == "settled"
            else fmt_seconds(float(specview.get(run.spec, "service.idle_s")))
        )
        return Fingerprints(res, shed, loaded.missing, idle_s)

    def sentences(self, data: Fingerprints) -> Entries:
        return {
            "fingerprints": lambda: memory.fingerprints(data.res, data.idle_s),
            "shed_ranking": lambda: rankings.ranking(
                data.shed,
                fmt_pct,
                "gave back most",
                "gave back least",
                descending=True,
                missing=data.missing,
                share=True,
            ),
        }
