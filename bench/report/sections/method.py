"""The experiment: the spec as run, the phases (idle, reclaim, sampling, load), the machine.

Tables {{ table.spec }}, {{ table.confounds }}; sentences {{ say.idle }}, {{ say.reclaim }},
{{ say.sampling }}, {{ say.load }} (worded by bench.report.prose.procedure from what the run
recorded, bench.report.method); values `spec.*`, `control.*` of the spec, `method.*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report import experiment, specview
from bench.report.aggregate import Results
from bench.report.live import LivePayload
from bench.report.method import Method, reclaim_reason
from bench.report.prose import procedure
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.units import (
    fmt_bytes_kb,
    fmt_count,
    fmt_mb,
    fmt_pct,
    fmt_seconds,
    fmt_share,
    join_names,
)

__all__ = ["MethodSection"]


@dataclass(frozen=True)
class MethodData:
    run: Run
    res: Results
    live: LivePayload
    method: Method


class MethodSection(Section[MethodData]):
    name = "method"
    title = "The experiment"

    def compute(self, loaded: Loaded) -> MethodData:
        return MethodData(loaded.run, loaded.res, loaded.live, loaded.method)

    def values(self, data: MethodData) -> dict[str, str]:
        spec, res = data.run.spec, data.res
        out = _spec_values(spec)
        out.update(_method_values(data.method))
        if spec_threads := specview.get(spec, "control.threads"):
            ran = {c.threads for c in res.control.values() if c.threads}
            # "cores": the threads as run, one per CPU of the machine that ran the control
            out["control.threads"] = (
                str(max(ran)) if spec_threads == "cores" and ran else str(spec_threads)
            )
        return out

    def sentences(self, data: MethodData) -> Entries:
        run, res, method = data.run, data.res, data.method
        return {
            "idle": lambda: procedure.idle(run, res, method),
            "reclaim": lambda: procedure.reclaim(run, res, method),
            "sampling": lambda: procedure.sampling(run, method),
            "load": lambda: procedure.load_held(run, res),
        }

    def tables(self, data: MethodData, prefix: str) -> Entries:
        return {
            "spec": lambda: experiment.spec_table(data.run, data.live),
            "confounds": lambda: experiment.confounds_table(data.run),
        }


def _spec_values(spec: dict[str, Any]) -> dict[str, str]:
    g = specview.get
    mix = ", ".join(f"{fmt_pct(share)} {name}" for name, share in specview.mix_shares(spec))
    return {
        "spec.workers": str(g(spec, "service.workers")),
        "spec.rate": f"{g(spec, 'service.rate'):g} requests/s",
        "spec.warmup": fmt_seconds(g(spec, "service.warmup_s")),
        "spec.load": fmt_seconds(g(spec, "service.load_s")),
        "spec.idle": fmt_seconds(g(spec, "service.idle_s")),
        "spec.settle_window": fmt_seconds(g(spec, "service.settle_window_s")),
        "spec.sample_interval": fmt_seconds(g(spec, "service.sample_interval_s")),
        "spec.python_malloc": str(g(spec, "service.python_malloc")),
        "spec.idle_rate": f"{float(g(spec, 'service.idle_rate')):g} requests/s",
        "spec.timeout": fmt_seconds(g(spec, "service.request_timeout_s")),
        "spec.live_buffers": fmt_count(g(spec, "service.churn.live_buffers")),
        "spec.initial_buffers": fmt_count(specview.start_buffers(spec)),
        "spec.alloc_per_call": fmt_count(g(spec, "service.churn.alloc_per_call")),
        "spec.long_lived_share": fmt_share(float(g(spec, "service.churn.long_lived_share"))),
        "spec.short_lifetime": specview.short_lifetime_text(spec),
        "spec.payload": specview.payload_text(spec),
        "spec.buffer_min": fmt_bytes_kb(int(g(spec, "service.churn.min_bytes"))),
        "spec.buffer_max": fmt_bytes_kb(int(g(spec, "service.churn.max_bytes"))),
        "spec.live_set.mb": fmt_mb(specview.live_bytes(spec)),
        "spec.mix": mix or "none",
        "spec.repeats": str(g(spec, "repeats")),
        "spec.allocators": join_names(specview.allocator_names(spec)),
        "control.threads": str(g(spec, "control.threads")),
        "control.seconds": fmt_seconds(g(spec, "control.seconds")),
        "control.idle": fmt_seconds(specview.control_idle_s(spec)),
        "control.repeats": str(g(spec, "control.repeats")),
        "control.live_set.mb": fmt_mb(specview.control_live_bytes(spec)),
    }


def _method_values(method: Method) -> dict[str, str]:
    """The method as recorded by the run (what the idle phase held, whether a reclaim ran)."""
    if method.reclaim_possible is None:
        reclaim = "not recorded"
    elif method.reclaim_possible:
        reclaim = f"possible ({method.reclaim_how or 'how not recorded'})"
    else:
        reclaim = f"not possible ({reclaim_reason(method.reclaim_how) or 'no reason recorded'})"
    return {
        "method.idle_traffic": method.idle_traffic or "not recorded",
        "method.reclaim": reclaim,
        "method.latency_failures": method.latency_failures or "not recorded",
        "method.memory_sampled_from": method.memory_sampled_from or "not recorded",
        "method.order": method.order_rule or "not recorded",
    }
