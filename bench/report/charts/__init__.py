"""The article's charts as Vega-Lite specs (vega-altair), rendered to inline SVG at build time.

Six charts, each a function from the aggregated results to a finished <figure> block, one
module per chart family: `staircase` (memory over time), `memory` (peak beside settled, and the
dumbbell of control against service), `throughput` (the control), `latency` (percentiles),
`leak` (the growth the program holds against what the allocator keeps). What they share (the
Okabe-Ito palette, fixed per allocator in spec order; the theme that follows the page's light
or dark palette; how the A/A duplicate is named; the 95% interval whiskers; the figure around
the SVG) is `figure`; `captions` words what each chart encodes. The article section that
shows a chart (bench.report.sections) names it for a page's {{ chart.<name> }}.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bench.report.aggregate import Results
from bench.report.charts import memory
from bench.report.charts.figure import MAX_ROWS, OKABE_ITO, Names, colours
from bench.report.method import method_of
from bench.report.prose.control import control_measure
from bench.report.run import Run
from bench.report.stats import Sample
from bench.report.units import md_safe

__all__ = ["MAX_ROWS", "OKABE_ITO", "Names", "captions", "colours", "repeats_phrase"]


def repeats_phrase(groups: Iterable[tuple[Sequence[Sample | None], int]]) -> str:
    """How a chart's values were reduced, for its caption: the mean of the clean repeats and
    its 95% interval (with the disturbed repeats left out), or a single repeat, no interval.

    Each group is the Samples charted from one allocator's results in one experiment and the
    repeats left out of them as disturbed (counted once per group, not once per Sample).
    """
    groups = [([s for s in samples if s is not None], k) for samples, k in groups]
    have = [s for samples, _ in groups for s in samples]
    ran = max((s.n + k for samples, k in groups for s in samples), default=0)
    if ran <= 1:
        return "a single repeat, no interval"
    text = f"mean of {ran} repeats, the whiskers its 95% interval"
    left_out = sum(k for samples, k in groups if samples)
    if left_out:
        text += f"; {left_out} disturbed repeat{'s' if left_out != 1 else ''} left out of the means"
    if any(s.n == 1 for s in have):
        text += "; a value from a single clean repeat has none"
    if any(s.interval is not None and s.interval[0] < 0 for s in have):
        text += "; a whisker reaching below zero is cut at the axis"
    return text


def captions(run: Run, res: Results, names: Names) -> dict[str, str]:
    """What each chart encodes, in words (the takeaways are in the article's sentences)."""
    svc = res.service.values()
    measure = control_measure(res)
    key = "allocs_per_cpu_s" if measure == "cpu" else "allocs_per_s"
    memory_reps = repeats_phrase(((r.peak, r.settled), r.excluded) for r in svc)
    latency_reps = repeats_phrase(((r.p50, r.p95, r.p99), r.excluded) for r in svc)
    control_reps = repeats_phrase(((getattr(c, key),), c.excluded) for c in res.control.values())
    dumbbell_reps = repeats_phrase(
        [((r.settled,), r.excluded) for r in svc]
        + [((c.settled,), c.excluded) for c in res.control.values()]
    )
    recorded = method_of(run.manifest).latency_failures
    failures = f" ({md_safe(recorded)})" if recorded else ""
    what = (
        "allocations per CPU-second of churn (the control had more threads than CPUs, so "
        "this leaves out the turns its threads waited)"
        if measure == "cpu"
        else "allocations per second"
    )
    service = [n for n in res.names if n in res.service]
    control = [n for n in res.names if n in res.control]
    return {
        "peak_settled": f"Peak (faint bar) and settled (solid bar) anonymous memory of the "
        f"service per allocator ({memory_reps}), leanest settled first"
        + (", each variant after its stock allocator." if res.variants else ".")
        + names.aa_sentence(service, "hollow with a dashed outline")
        + names.variant_sentence(service, "with a lighter fill"),
        "dumbbell": "Settled anonymous memory per allocator: the C++ control as a hollow dot, "
        f"the Python service as a filled dot ({dumbbell_reps}); the label is the service "
        "minus the control."
        + memory.rest_caveat(run, res)
        + names.aa_sentence(service, "its gap dashed")
        + names.variant_sentence(service, "with a dotted gap and a lighter service dot"),
        "throughput": f"C++ control {what} ({control_reps}); the bar is the mean and the table "
        "beside it also gives the slowest and the fastest repeat."
        + names.aa_sentence(control, "hollow with a dashed outline")
        + names.variant_sentence(control, "with a lighter fill"),
        "leak": "What the service's anonymous memory grew by from the ready service to the "
        "end of idle, per allocator (mean of the clean repeats): in blue the growth of the "
        "program's own heap, the bytes malloc counts as in use; in orange the rest, memory the "
        "allocator keeps resident for what the program freed.",
        "latency": f"Request latency per allocator ({latency_reps}), counted from each "
        f"request's scheduled send time{failures}: circle p50, square p95, triangle p99."
        + names.aa_sentence(service, "in hollow marks")
        + names.variant_sentence(service, "with lighter marks"),
    }
