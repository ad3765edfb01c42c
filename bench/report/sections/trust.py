"""Trust: what the run did not measure, its noise, the A/A pair, disturbed and flagged repeats.

Sentences {{ say.not_measured }}, {{ say.not_measured_brief }}, {{ say.noise }}, {{ say.aa }},
{{ say.disturbed }}, {{ say.flags }}; values `tie.*`, `noisy.*`, `repeats.*`, `allocators.*`,
`variants.*`, `disturbed.count`, `flagged.*`, `aa.*`. These see the whole run (`full`): the
noise of the A/A pair is part of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.aggregate import Results
from bench.report.prose import trust
from bench.report.prose.rankings import pct_text
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import NOISY_REL, TIE_REL
from bench.report.units import NOT_MEASURED, fmt_pct, join_names

__all__ = ["TrustSection"]


@dataclass(frozen=True)
class Trust:
    full: Results
    res: Results


class TrustSection(Section[Trust]):
    name = "trust"
    title = "The machine"

    def compute(self, loaded: Loaded) -> Trust:
        return Trust(loaded.full, loaded.res)

    def values(self, data: Trust) -> dict[str, str]:
        return _noise_values(data.full)

    def sentences(self, data: Trust) -> Entries:
        full, res = data.full, data.res
        return {
            "flags": lambda: trust.flags(full),
            "not_measured": lambda: trust.not_measured(res, full.variants),
            "not_measured_brief": lambda: trust.not_measured_brief(res),
            "noise": lambda: trust.noise(full),
            "aa": lambda: trust.aa(full),
            "disturbed": lambda: trust.disturbed(full),
        }


def _noise_values(res: Results) -> dict[str, str]:
    """The noise rule and the A/A floor as named values (`res` is the whole run)."""
    with_repeats = any(r.settled.n > 1 for r in res.service.values()) or any(
        c.allocs_per_s is not None and c.allocs_per_s.n > 1 for c in res.control.values()
    )
    floor = (
        f"the A/A pair's difference ({res.aa.name} run twice)"
        if res.aa
        else f"{fmt_pct(TIE_REL)} of the larger value (a single repeat measures no noise)"
    )
    out = {
        "tie.threshold": fmt_pct(TIE_REL),
        "noisy.threshold": fmt_pct(NOISY_REL),
        "tie.rule": "overlapping 95% intervals of their repeats" if with_repeats else floor,
        "repeats.service": str(
            max((r.settled.n + r.settled.excluded for r in res.service.values()), default=0)
        ),
        "repeats.control": str(
            max((c.allocs_per_s.n for c in res.control.values() if c.allocs_per_s), default=0)
        ),
        "allocators.count": str(len(res.ranked().allocators)),
        "allocators.measured": str(len(res.ranked().service)),
        "allocators.names": join_names(list(res.ranked().names)),
        # variants (a stock allocator with a setting changed) are counted apart: the rankings
        # and the counts above leave them out
        "variants.count": str(len(res.variants)),
        "variants.measured": str(sum(1 for v in res.variants if v.name in res.service)),
        "variants.names": join_names([v.name for v in res.variants]) or "none",
        "disturbed.count": str(len(res.disturbed)),
        "flagged.count": str(len(res.flagged)),
        "flagged.allocators": join_names(list(dict.fromkeys(f.allocator for f in res.flagged)))
        or "none",
        "aa.name": res.aa.name if res.aa else NOT_MEASURED,
        "aa.again": res.aa.again if res.aa else NOT_MEASURED,
    }
    for key in ("settled", "peak", "p99"):
        d = res.aa.service.get(key) if res.aa else None
        out[f"aa.{key}.pct"] = pct_text(d) if d is not None else NOT_MEASURED
    d = res.aa.control.get("allocs_per_s") if res.aa else None
    out["aa.control.pct"] = pct_text(d) if d is not None else NOT_MEASURED
    return out
