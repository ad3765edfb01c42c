"""What it means: which allocator to pick for what, and what each choice costs.

Sentences {{ say.guidance }} (which number to size for, and which allocator keeps it lowest)
and {{ say.guidance_costs }} (what that choice costs elsewhere: latency, the control).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.aggregate import Results, control_measure
from bench.report.prose.memory import leanest_tiers
from bench.report.prose.rankings import names_text
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.control import throughputs_of
from bench.report.stats import latency_verdict, rank
from bench.report.units import fmt_mb, fmt_ms, md_safe

__all__ = ["GuidanceSection", "guidance", "guidance_costs"]


def guidance(res: Results) -> str:
    tiers = leanest_tiers(res)
    if tiers is None:
        return (
            "Guidance needs at least two measured allocators."
            if len(res.service) < 2
            else "The repeats disagreed too much to name a leaner allocator; run more repeats "
            "on a quieter machine."
        )
    best_p, best_s = tiers
    out = [
        f"If a container memory limit is what you size for, the peak is the number that "
        f"matters, and here the lowest peak belongs to {names_text(best_p)} "
        f"({fmt_mb(res.service[best_p[0]].peak.center)}).",
        f"If you pay for memory that sits idle, or pack many services onto one machine, "
        f"settled memory matters, and {names_text(best_s)} settled lowest "
        f"({fmt_mb(res.service[best_s[0]].settled.center)}).",
    ]
    both = [n for n in best_p if n in best_s]
    out.append(
        f"{names_text(both)} {'wins' if len(both) == 1 else 'win'} on both counts in this run."
        if both
        else "No allocator wins on both counts in this run."
    )
    return " ".join(out)


def guidance_costs(res: Results) -> str:
    p99 = {n: r.p99 for n, r in res.service.items() if r.p99}
    v = latency_verdict(p99)
    measure = control_measure(res)
    speed, _ = throughputs_of(res, measure)
    parts = []
    if v is not None:
        parts.append(
            "Request latency barely moved between allocators, so on this workload the "
            "memory choice costs no measurable latency."
            if not v.moved
            else f"Check latency before switching: p99 moved, and {md_safe(v.highest)} "
            f"had the highest ({fmt_ms(v.high_ms)})."
        )
    tiers = rank(speed, descending=True)
    if len(speed) >= 2 and tiers:
        fast = tiers[0]
        parts.append(
            f"Where raw allocation speed matters more than memory, the bare C++ "
            f"control favours {names_text(fast)}"
            + (" (per CPU-second)." if measure == "cpu" else ".")
        )
    return " ".join(parts)


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
            "guidance": lambda: guidance(data.res),
            "guidance_costs": lambda: guidance_costs(data.res),
        }
