"""Sentences whose comparative words are computed from the results, one module per family.

Each function returns one or a few sentences of Markdown-safe text. Ranking words come from
compare.rank (so ties are called ties), "barely moved" from compare.latency_verdict,
keep-or-return from compare.classify_fingerprint; no function assumes which allocator wins or
how many ran.
A sentence about a step of the method (the idle traffic, a forced reclaim) follows what the
run recorded (bench.report.method), never what the study usually does.

Families: rankings (the shared wording of ranks and ties), memory, procedure (idle, reclaim,
sampling, load), latency, limit (the service under a memory limit), control, guidance, trust
(what was not measured, noise, disturbance, evidence), knobs (each variant against its own
base), recycling (recycled allocators against themselves without it). `sentences` is the
registry a page quotes as {{ say.<name> }}; the sentences themselves are imported from their
family's module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.report import calibration, peakcheck, settling, specview
from bench.report.aggregate import Results
from bench.report.compare import Sample, shed_fraction
from bench.report.leak import leak_results
from bench.report.limit import limit_run
from bench.report.live import LivePayload, live_payload
from bench.report.method import method_of
from bench.report.prose import (
    control,
    guidance,
    knobs,
    latency,
    leak,
    limit,
    memory,
    procedure,
    rankings,
    recycling,
    trust,
    workload,
)
from bench.report.run import Run
from bench.report.units import fmt_mb, fmt_pct, fmt_ratio, fmt_seconds

__all__ = [
    "control",
    "guidance",
    "knobs",
    "latency",
    "leak",
    "limit",
    "memory",
    "procedure",
    "rankings",
    "recycling",
    "sentences",
    "trust",
    "workload",
]


def sentences(
    run: Run, res: Results, live: LivePayload | None = None
) -> dict[str, Callable[[], str]]:
    """Every sentence a page can quote as {{ say.<name> }}, computed when first used.

    Rankings compare `res.ranked()`, the results without the A/A duplicate (one allocator is
    not ranked against itself) and without the variants (tuned, they are held against their
    own base in `knobs`); the sentences about noise and knobs see the whole run.
    """
    full, res = res, res.ranked()
    tuned = recycling.without_recycled(run, full)  # a variant that only recycles turns no knob
    aa_name = full.aa.name if full.aa else None
    idle_s = (
        "the idle"
        if specview.get(run.spec, "service.idle_ends") == "settled"
        else fmt_seconds(float(specview.get(run.spec, "service.idle_s")))
    )
    method = method_of(run.manifest)
    hosted = workload.hosted_app(run) is not None
    svc: dict[str, Any] = res.service
    settled = {n: r.settled for n, r in svc.items()}
    peak = {n: r.peak for n, r in svc.items()}
    shed = {
        n: r.given_back or Sample((f,), f, 0.0)
        for n, r in svc.items()
        if (f := shed_fraction(r.peak.center, r.settled.center)) is not None
    }
    overhead_settled = {n: r.overhead_settled for n, r in svc.items() if r.overhead_settled}
    missing = res.missing("service", brief=True)
    ctl_missing = (
        res.missing("control", brief=True) if specview.get(run.spec, "control.enabled") else []
    )

    def payload() -> LivePayload:
        return live if live is not None else live_payload(run, [n for n in res.names if n in svc])

    return {
        "headline": lambda: memory.headline(res),
        "settled_ranking": lambda: rankings.ranking(
            settled, fmt_mb, "leanest", "heaviest", missing=missing, aa_name=aa_name
        ),
        "peak_ranking": lambda: rankings.ranking(
            peak, fmt_mb, "leanest", "heaviest", missing=missing, aa_name=aa_name
        ),
        "shed_ranking": lambda: rankings.ranking(
            shed,
            fmt_pct,
            "gave back most",
            "gave back least",
            descending=True,
            missing=missing,
            share=True,
        ),
        "overhead": lambda: memory.overhead(res, hosted=hosted),
        "payload": lambda: memory.payload(res, hosted=hosted),
        "overhead_ranking": lambda: rankings.ranking(
            overhead_settled,
            fmt_ratio,
            "leanest",
            "heaviest",
            missing=missing,
            aa_name=aa_name,
        ),
        "peak_vs_settled": lambda: memory.peak_vs_settled(res),
        "fingerprints": lambda: memory.fingerprints(res, idle_s),
        "settling": lambda: " ".join(
            t for t in (settling.settling_sentence(res), settling.idle_sentence(res)) if t
        ),
        "timers": lambda: settling.timers_sentence(run, res),
        "calibration": lambda: calibration.calibration_sentence(run.manifest),
        "peak_caught": lambda: peakcheck.peak_caught_sentence(run.summary, res.names),
        "idle": lambda: procedure.idle(run, res, method),
        "reclaim": lambda: procedure.reclaim(run, res, method),
        "staircase": lambda: memory.staircase(run, res),
        "sampling": lambda: procedure.sampling(run, method),
        "live_payload": lambda: memory.live_sentence(res, payload(), method),
        "flags": lambda: trust.flags(full),
        "version_notes": lambda: trust.version_notes(res),
        "latency": lambda: latency.latency(res),
        "latency_median": lambda: latency.latency_median(res),
        "load": lambda: procedure.load_held(run, res),
        "memory_limit": lambda: limit.memory_limit(
            limit_run(run),
            workers=int(specview.get(run.spec, "service.workers")),
            ranked=res.names,
            missing=missing,
        ),
        "control_oversubscription": lambda: control.control_oversubscription(res),
        "control_throughput": lambda: control.control_throughput(res),
        "control_ranking": lambda: control.control_ranking(res, ctl_missing, aa_name),
        "control_other": lambda: control.control_other(res),
        "spread_compare": lambda: control.spread_compare(res),
        "guidance": lambda: guidance.guidance(res),
        "guidance_costs": lambda: guidance.guidance_costs(res),
        "not_measured": lambda: trust.not_measured(res, full.variants),
        "not_measured_brief": lambda: trust.not_measured_brief(res),
        "noise": lambda: trust.noise(full),
        "aa": lambda: trust.aa(full),
        "disturbed": lambda: trust.disturbed(full),
        "evidence": lambda: trust.evidence(full),
        "knobs": lambda: knobs.knobs(tuned),
        "knobs_read_back": lambda: knobs.read_back(tuned),
        "recycling": lambda: recycling.recycling(run, full),  # variants against their base
        # the A/A duplicate would say its allocator's verdict twice; the table shows it
        "leak": lambda: leak.leak_or_retention(
            leak_results(run, [n for n in full.names if not (full.aa and n == full.aa.again)])
        ),
        "workload": lambda: workload.workload(run),
        "subject": lambda: workload.subject(run),
    }
