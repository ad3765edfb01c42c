"""Sentences about the bare C++ control: which throughput ranks it (per wall-clock second, or
per CPU-second when its threads took turns), the ranking on each, and how its spread of
settled memory compares with the service's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bench.report.aggregate import Results, control_measure
from bench.report.prose.rankings import (
    Fmt,
    lead_text,
    names_text,
    noisy_text,
    ranking,
    ranking_body,
)
from bench.report.stats import TIE_REL, Sample, extremes_ratio, rank
from bench.report.units import fmt_mops, fmt_mops_cpu, fmt_ratio, md_safe

__all__ = [
    "control_measure",
    "control_other",
    "control_oversubscription",
    "control_ranking",
    "control_throughput",
    "spread_compare",
    "throughputs_of",
]


def throughputs_of(res: Results, measure: str) -> tuple[dict[str, Sample], Fmt]:
    if measure == "cpu":
        items = {n: c.allocs_per_cpu_s for n, c in res.control.items() if c.allocs_per_cpu_s}
        return items, fmt_mops_cpu
    return {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}, fmt_mops


def control_throughput(res: Results) -> str:
    measure = control_measure(res)
    speed, fmt = throughputs_of(res, measure)
    if not speed:
        return "The C++ control was not run or recorded no throughput."
    how = " per CPU-second" if measure == "cpu" else ""
    if len(speed) == 1:
        (n,) = speed
        return f"Only {md_safe(n)} ran in the C++ control, at {fmt(speed[n].center)}."
    tiers = rank(speed, descending=True)
    shaky = noisy_text(speed, fmt)
    if not tiers:
        return f"The C++ control's throughput{how} varied too much between repeats to rank. {shaky}"
    if len(tiers) == 1:
        n = len(tiers[0])
        if n == 1:  # the ranking sentence after this one names it and the noisy ones
            return ""
        head = (
            f"In the C++ control {'both' if n == 2 else f'all {n}'} ranked "
            f"allocators tie on throughput{how}, within the noise of their repeats."
        )
        return " ".join(t for t in (head, shaky) if t)
    fast, slow = tiers[0], tiers[-1]
    ratio = speed[fast[0]].center / speed[slow[0]].center
    head = (
        f"In the C++ control{how}, {lead_text(fast, 'fastest', speed, fmt)} and "
        f"{lead_text(slow, 'slowest', speed, fmt)}, {fmt_ratio(ratio)} apart."
    )
    return " ".join(t for t in (head, shaky) if t)


def control_ranking(
    res: Results, missing: Sequence[tuple[str, str]], aa_name: str | None = None
) -> str:
    """The control's allocators from fastest to slowest, on the measure control_measure picks."""
    measure = control_measure(res)
    speed, fmt = throughputs_of(res, measure)
    return ranking(
        speed, fmt, "fastest", "slowest", descending=True, missing=missing, aa_name=aa_name
    )


def control_other(res: Results) -> str:
    """The control ranked on the other throughput measure, for comparison."""
    measure = control_measure(res)
    other = "wall" if measure == "cpu" else "cpu"
    speed, fmt = throughputs_of(res, other)
    if not res.control:
        return ""
    if not speed:
        return (
            "The run recorded no CPU time for the control, so there is no figure per CPU-second."
            if other == "cpu"
            else "The run recorded no wall-clock throughput for the control."
        )
    lead = (
        "Counted per CPU-second of churn instead, which leaves out any time the threads "
        "waited for a CPU, "
        if other == "cpu"
        else "Counted per wall-clock second instead, which includes the turns the threads waited, "
    )
    body = ranking_body(speed, fmt, "fastest", "slowest", True)
    return lead + body[:1].lower() + body[1:]


def control_oversubscription(res: Results) -> str:
    """Whether the control had a CPU for every thread, from the `oversubscribed` column."""
    if not res.control:
        return ""
    over = [c.oversubscribed for c in res.control.values() if c.oversubscribed is not None]
    threads = max((c.threads or 0 for c in res.control.values()), default=0)
    count = f"{threads} threads" if threads else "its threads"
    if not over:
        return "The run did not record whether the control had a CPU for every thread."
    if any(over):
        names = [n for n, c in res.control.items() if c.oversubscribed]
        who = "" if len(names) == len(res.control) else f" (for {names_text(names)})"
        return (
            f"The control ran {count} on fewer CPUs than threads{who}, so its threads took "
            "turns: the wall-clock rate counts that waiting, and allocations per CPU-second, "
            "which count only the time the threads ran, are the fairer comparison here."
        )
    return (
        f"The control had a CPU for each of its {count.split()[0]} threads, so allocations "
        "per wall-clock second compare fairly; the figures per CPU-second are in the chart's "
        "data table."
        if threads
        else "The control had a CPU for every thread, so allocations per wall-clock second "
        "compare fairly."
    )


def spread_compare(res: Results) -> str:
    svc = extremes_ratio({n: r.settled for n, r in res.service.items()})
    ctl = extremes_ratio({n: c.settled for n, c in res.control.items() if c.settled})
    if svc is None or ctl is None or len(res.service) < 2 or len(res.control) < 2:
        return "Comparing the spread needs at least two allocators in both experiments."
    head = (
        f"Settled memory spans {fmt_ratio(svc)} from leanest to heaviest in the Python "
        f"service and {fmt_ratio(ctl)} in the C++ control"
    )
    if abs(math.log(svc / ctl)) <= math.log1p(TIE_REL):
        return head + ": about the same, so the runtime adds little divergence of its own."
    if svc > ctl:
        return (
            head + ": the allocators differ more under the Python runtime and its mixed "
            "workload than on the bare churn alone."
        )
    return (
        head + ": the allocators differ more on the bare churn than under the Python "
        "runtime, which evens them out."
    )
