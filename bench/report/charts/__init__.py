"""The article's charts as Vega-Lite specs (vega-altair), rendered to inline SVG at build time.

Five charts, each a function from the aggregated results to a finished <figure> block, one
module per chart family: `staircase` (memory over time), `memory` (peak beside settled, and
the dumbbell of control against service), `throughput` (the control), `latency`
(percentiles). What they share (the Okabe-Ito palette, fixed per allocator in spec order; the
theme that follows the page's light or dark palette; the figure around the SVG) is `figure`.
`charts` is the registry a page places as {{ chart.<name> }}.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.report.aggregate import Results
from bench.report.charts import latency, memory, staircase, throughput
from bench.report.charts.figure import MAX_ROWS, OKABE_ITO, colours
from bench.report.live import LivePayload
from bench.report.method import method_of
from bench.report.prose.control import control_measure
from bench.report.run import Run
from bench.report.units import md_safe

__all__ = ["MAX_ROWS", "OKABE_ITO", "charts", "colours"]


def _captions(run: Run, res: Results) -> dict[str, str]:
    """What each chart encodes, in words (the takeaways are in the article's sentences)."""
    n_svc = max((r.settled.n for r in res.service.values()), default=0)
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    n_ctl = max((getattr(c, key).n for c in res.control.values() if getattr(c, key)), default=0)
    reps = f"median of {n_svc} repeats" if n_svc > 1 else "a single repeat"
    recorded = method_of(run.manifest).latency_failures
    failures = f" ({md_safe(recorded)})" if recorded else ""
    what = (
        "allocations per CPU-second of churn (the control had more threads than CPUs, so "
        "this leaves out the turns its threads waited)"
        if measure == "cpu"
        else "allocations per second"
    )
    return {
        "peak_settled": f"Peak (faint bar) and settled (solid bar) anonymous memory of the "
        f"service per allocator ({reps}), leanest settled first.",
        "dumbbell": "Settled anonymous memory per allocator: the C++ control as a hollow dot, "
        "the Python service as a filled dot; the label is the service minus the control."
        + memory.rest_caveat(run, res),
        "throughput": f"C++ control {what}, mean of {n_ctl} repeat"
        f"{'s' if n_ctl != 1 else ''}; the dark line spans the slowest to the fastest repeat.",
        "latency": f"Request latency per allocator ({reps}), counted from each request's "
        f"scheduled send time{failures}: circle p50, square p95, triangle p99.",
    }


def charts(run: Run, res: Results, live: LivePayload | None = None) -> dict[str, Callable[[], str]]:
    """Every chart a page can place as {{ chart.<name> }}, rendered when first used."""
    palette = colours(res.names)
    cap = _captions(run, res)
    return {
        "staircase": lambda: staircase.staircase(run, res, palette, live),
        "peak_settled": lambda: memory.peak_settled(res, palette, cap["peak_settled"]),
        "dumbbell": lambda: memory.dumbbell(res, palette, cap["dumbbell"]),
        "throughput": lambda: throughput.throughput(res, palette, cap["throughput"]),
        "latency": lambda: latency.latency(res, palette, cap["latency"]),
    }
