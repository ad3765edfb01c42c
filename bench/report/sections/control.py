"""The C++ control: the same allocators under a bare program, and its memory beside the service.

Charts {{ chart.throughput }}, {{ chart.dumbbell }}; sentences {{ say.control_* }},
{{ say.spread_compare }}; values `control.*` (fastest, slowest, settled, oversubscribed, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.charts import memory as memory_chart
from bench.report.charts import throughput as chart
from bench.report.charts.figure import Names, repeats_phrase
from bench.report.prose import control
from bench.report.prose.rankings import extreme_values, median_center
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import extremes_ratio
from bench.report.units import fmt_mb, fmt_mops, fmt_mops_cpu, fmt_ratio, fmt_seconds

__all__ = ["ControlSection"]


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
            "control_oversubscription": lambda: control.control_oversubscription(res),
            "control_throughput": lambda: control.control_throughput(res),
            "control_ranking": lambda: control.control_ranking(res, data.missing, data.aa_name),
            "control_other": lambda: control.control_other(res),
            "spread_compare": lambda: control.spread_compare(res),
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
    measure = control.control_measure(res)
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
    out["control.throughput.ratio"] = fmt_ratio(extremes_ratio(speed))
    out["control.throughput_per_cpu.ratio"] = fmt_ratio(extremes_ratio(per_cpu))
    out["control.settled.ratio"] = fmt_ratio(extremes_ratio(settled))
    over = [c.oversubscribed for c in res.control.values() if c.oversubscribed is not None]
    out["control.oversubscribed"] = "not recorded" if not over else "yes" if any(over) else "no"
    rest = median_center([c.idle_s for c in res.control.values()])
    out["control.rested"] = fmt_seconds(rest) if rest is not None else "not recorded"
    return out
