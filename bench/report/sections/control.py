"""The C++ control: the same allocators under a bare program, and its memory beside the service.

Charts {{ chart.throughput }}, {{ chart.dumbbell }}; sentences {{ say.control_* }},
{{ say.spread_compare }}; values `control.*` (fastest, slowest, settled, oversubscribed, ...).

The sentences say which throughput ranks the control (per wall-clock second, or per
CPU-second when its threads took turns), the ranking on each, and how its spread of settled
memory compares with the service's. The charts themselves are shared with the comparison
page (bench.report.charts: `throughput`, and `memory`'s dumbbell); their captions are here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.report import specview
from bench.report.aggregate import Results, control_measure
from bench.report.charts import memory as memory_chart
from bench.report.charts import throughput as chart
from bench.report.charts.figure import Names, repeats_phrase
from bench.report.prose.rankings import (
    Fmt,
    extreme_values,
    lead_text,
    median_center,
    names_text,
    noisy_text,
    ranking,
    ranking_body,
)
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import TIE_REL, Sample, extremes_ratio, rank, ranked
from bench.report.units import fmt_mb, fmt_mops, fmt_mops_cpu, fmt_ratio, fmt_seconds, md_safe

__all__ = [
    "ControlSection",
    "control_other",
    "control_oversubscription",
    "control_ranking",
    "control_throughput",
    "dumbbell_caption",
    "spread_compare",
    "throughput_caption",
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
    services = ranked({n: r.settled for n, r in res.service.items()})
    controls = ranked({n: c.settled for n, c in res.control.items() if c.settled})
    svc, ctl = extremes_ratio(services), extremes_ratio(controls)
    if svc is None or ctl is None or len(services) < 2 or len(controls) < 2:
        return "Comparing the spread needs at least two allocators ranked in both experiments."
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


@dataclass(frozen=True)
class Control:
    run: Run
    full: Results
    res: Results
    #: the allocators with no control data (none when the spec turned the control off)
    missing: list[tuple[str, str]]
    aa_name: str | None


class ControlSection(Section[Control]):
    name = "control"
    title = "The C++ control"

    def compute(self, loaded: Loaded) -> Control:
        res = loaded.res
        missing = (
            res.missing("control", brief=True)
            if specview.get(loaded.run.spec, "control.enabled")
            else []
        )
        return Control(loaded.run, loaded.full, res, missing, loaded.aa_name)

    def values(self, data: Control) -> dict[str, str]:
        return _control_values(data.res)

    def sentences(self, data: Control) -> Entries:
        res = data.res
        return {
            "control_oversubscription": lambda: control_oversubscription(res),
            "control_throughput": lambda: control_throughput(res),
            "control_ranking": lambda: control_ranking(res, data.missing, data.aa_name),
            "control_other": lambda: control_other(res),
            "spread_compare": lambda: spread_compare(res),
        }

    def charts(self, data: Control) -> Entries:
        names = Names.of(data.full)
        return {
            "dumbbell": lambda: memory_chart.dumbbell(
                data.full, names, dumbbell_caption(data.run, data.full, names)
            ),
            "throughput": lambda: chart.throughput(
                data.full, names, throughput_caption(data.full, names)
            ),
        }


def dumbbell_caption(run: Run, res: Results, names: Names) -> str:
    """What the dumbbell of control against service encodes, in words."""
    reps = repeats_phrase(
        [((r.settled,), r.excluded) for r in res.service.values()]
        + [((c.settled,), c.excluded) for c in res.control.values()]
    )
    service = [n for n in res.names if n in res.service]
    return (
        "Settled anonymous memory per allocator: the C++ control as a hollow dot, "
        f"the Python service as a filled dot ({reps}); the label is the service "
        "minus the control."
        + memory_chart.rest_caveat(run, res)
        + names.aa_sentence(service, "its gap dashed")
        + names.variant_sentence(service, "with a dotted gap and a lighter service dot")
    )


def throughput_caption(res: Results, names: Names) -> str:
    """What the control's throughput chart encodes, in words."""
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    reps = repeats_phrase(((getattr(c, key),), c.excluded) for c in res.control.values())
    what = (
        "allocations per CPU-second of churn (the control had more threads than CPUs, so "
        "this leaves out the turns its threads waited)"
        if measure == "cpu"
        else "allocations per second"
    )
    control_names = [n for n in res.names if n in res.control]
    return (
        f"C++ control {what} ({reps}); the bar is the mean and the table "
        "beside it also gives the slowest and the fastest repeat."
        + names.aa_sentence(control_names, "hollow with a dashed outline")
        + names.variant_sentence(control_names, "with a lighter fill")
    )


def _control_values(res: Results) -> dict[str, str]:
    speed = {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}
    settled = {n: c.settled for n, c in res.control.items() if c.settled}
    out = {}
    out.update(
        extreme_values(
            speed,
            "control.",
            fmt_mops,
            best_low=False,
            best="fastest",
            worst="slowest",
            unit_key="mops",
        )
    )
    out.update(
        extreme_values(
            settled,
            "control.",
            fmt_mb,
            best_low=True,
            best="leanest_settled",
            worst="heaviest_settled",
            unit_key="mb",
        )
    )
    per_cpu = {n: c.allocs_per_cpu_s for n, c in res.control.items() if c.allocs_per_cpu_s}
    out.update(
        extreme_values(
            per_cpu,
            "control.",
            fmt_mops_cpu,
            best_low=False,
            best="fastest_per_cpu",
            worst="slowest_per_cpu",
            unit_key="mops",
        )
    )
    out["control.throughput.ratio"] = fmt_ratio(extremes_ratio(ranked(speed)))
    out["control.throughput_per_cpu.ratio"] = fmt_ratio(extremes_ratio(ranked(per_cpu)))
    out["control.settled.ratio"] = fmt_ratio(extremes_ratio(ranked(settled)))
    over = [c.oversubscribed for c in res.control.values() if c.oversubscribed is not None]
    out["control.oversubscribed"] = "not recorded" if not over else "yes" if any(over) else "no"
    rest = median_center([c.idle_s for c in res.control.values()])
    out["control.rested"] = fmt_seconds(rest) if rest is not None else "not recorded"
    return out
