"""The named values a page can quote: a flat mapping of name to formatted text with units.

Names are dotted and stable (`leanest_settled.mb`, `p99.band`, `control.fastest.name`);
docs/guide/writing-pages.md lists them all with their value for the home study. A value that
the run could not measure reads "not measured" rather than disappearing.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.compare import (
    LATENCY_ABS_MS,
    LATENCY_REL,
    NOISY_REL,
    TIE_REL,
    Sample,
    classify_fingerprint,
    extremes_ratio,
    latency_verdict,
    rank,
    shed_fraction,
)
from bench.report.live import FILL_SHARE, LivePayload, fill_text, live_payload
from bench.report.method import Method, method_of, reclaim_reason
from bench.report.prose.rankings import pct_text
from bench.report.run import Freshness, Run
from bench.report.units import (
    NOT_MEASURED,
    fmt_bytes_kb,
    fmt_count,
    fmt_duration,
    fmt_given_back,
    fmt_mb,
    fmt_mops,
    fmt_mops_cpu,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    fmt_share,
    join_names,
)
from bench.report.versions import original_version

__all__ = ["named_values"]


def _extreme(
    items: Mapping[str, Sample],
    prefix: str,
    fmt: Any,
    *,
    best_low: bool,
    best: str,
    worst: str,
    unit_key: str,
) -> dict[str, str]:
    """`<best>.name`/`.<unit>` and `<worst>.…` for one ranked measure (tiers joined)."""
    out: dict[str, str] = {}
    keys = (f"{prefix}{best}", f"{prefix}{worst}")
    if not items:
        for k in keys:
            out[f"{k}.name"] = out[f"{k}.{unit_key}"] = NOT_MEASURED
        return out
    tiers = rank(items, descending=not best_low)
    if not tiers:
        for k in keys:
            out[f"{k}.name"] = out[f"{k}.{unit_key}"] = "too noisy to rank"
        return out
    for key, tier in zip(keys, (tiers[0], tiers[-1]), strict=True):
        out[f"{key}.name"] = join_names(list(tier))
        out[f"{key}.{unit_key}"] = fmt(items[tier[0]].center)
    return out


def _band(items: Mapping[str, Sample], fmt: Any) -> str:
    if not items:
        return NOT_MEASURED
    lo = min(s.center for s in items.values())
    hi = max(s.center for s in items.values())
    return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo).split(' ')[0]}–{fmt(hi)}"


def _run_values(run: Run, fresh: Freshness) -> dict[str, str]:
    m = run.manifest
    tool, host = m.get("tool") or {}, m.get("host") or {}
    conf = m.get("confounds") or {}
    thp = conf.get("thp") if isinstance(conf.get("thp"), dict) else {"during": conf.get("thp")}
    pressure = conf.get("cpu_pressure") if isinstance(conf.get("cpu_pressure"), dict) else {}
    mem = host.get("memory_bytes")
    return {
        "study.name": str(m.get("spec_name") or run.ref.study),
        "study.title": str(run.spec.get("title") or run.ref.study),
        "study.description": str(run.spec.get("description") or "").strip() or "(none)",
        "run.id": run.ref.run_id,
        "run.status": run.ref.status,
        "run.started": str(m.get("started") or "not recorded"),
        "run.finished": str(m.get("finished") or "not recorded"),
        "run.date": str(m.get("started") or "not recorded")[:10],
        "tool.version": str(tool.get("version") or "not recorded"),
        "tool.commit": str(tool.get("git_commit") or "not recorded"),
        "tool.dirty": "yes" if tool.get("git_dirty") else "no",
        "host.name": str(host.get("hostname") or "not recorded"),
        "host.cpu": str(host.get("cpu_model") or "not recorded"),
        "host.cores": str(host.get("cores") or "not recorded"),
        "host.memory": f"{mem / 1e9:.0f} GB" if mem else "not recorded",
        "host.kernel": str(host.get("kernel") or "not recorded"),
        "host.glibc": str(host.get("glibc") or "not recorded"),
        "host.python": str(host.get("python") or "not recorded"),
        "spec.file": str(m.get("spec_file") or "not recorded"),
        "spec.hash": str(m.get("spec_sha256") or "not recorded")[:12],
        "spec.freshness": fresh.state,
        "confounds.thp": str(thp.get("during") or "not recorded"),
        "confounds.swap": (
            f"{conf['swap_bytes'] / 1e6:,.0f} MB"
            if conf.get("swap_bytes")
            else "off"
            if conf.get("swap_bytes") == 0
            else "not recorded"
        ),
        "confounds.governor": str(conf.get("governor") or "none available"),
        "confounds.cgroup": str(conf.get("cgroup_mode") or "not recorded"),
        "confounds.python_malloc": str(conf.get("python_malloc") or "not recorded"),
        "confounds.cpu_pressure": (
            f"{pressure.get('avg10_end'):.1f}%"
            if pressure.get("avg10_end") is not None
            else "not recorded"
        ),
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


def _memory_values(res: Results) -> dict[str, str]:
    settled = {n: r.settled for n, r in res.service.items()}
    peak = {n: r.peak for n, r in res.service.items()}
    out = {}
    out.update(
        _extreme(
            settled,
            "",
            fmt_mb,
            best_low=True,
            best="leanest_settled",
            worst="heaviest_settled",
            unit_key="mb",
        )
    )
    out.update(
        _extreme(
            peak,
            "",
            fmt_mb,
            best_low=True,
            best="leanest_peak",
            worst="heaviest_peak",
            unit_key="mb",
        )
    )
    out["settled.ratio"] = fmt_ratio(extremes_ratio(settled))
    out["peak.ratio"] = fmt_ratio(extremes_ratio(peak))
    out["settled.band"] = _band(settled, fmt_mb)
    out["peak.band"] = _band(peak, fmt_mb)
    lo_settled = min((s.center for s in settled.values()), default=None)
    hi_peak = max((s.center for s in peak.values()), default=None)
    out["heaviest_peak_to_leanest_settled.ratio"] = fmt_ratio(
        hi_peak / lo_settled if hi_peak and lo_settled else None
    )
    return out


def _overhead_values(res: Results) -> dict[str, str]:
    """Leanest and heaviest overhead per byte of live payload, at the peak and settled."""
    out: dict[str, str] = {}
    for when in ("settled", "peak"):
        items = {n: getattr(r, f"overhead_{when}") for n, r in res.service.items()}
        items = {n: x for n, x in items.items() if x is not None}
        out.update(
            _extreme(
                items,
                "",
                fmt_ratio,
                best_low=True,
                best=f"leanest_overhead_{when}",
                worst=f"heaviest_overhead_{when}",
                unit_key="ratio",
            )
        )
        out[f"overhead_{when}.band"] = _band(items, fmt_ratio)
    return out


def _median_center(samples: list[Sample | None]) -> float | None:
    centers = [s.center for s in samples if s is not None]
    return statistics.median(centers) if centers else None


def _live_values(res: Results, live: LivePayload, method: Method) -> dict[str, str]:
    """The live payload the program held (median across allocators) and when it filled."""
    svc = list(res.service.values())
    estimate = method.live_set_fill_s
    return {
        "live.ready.mb": fmt_mb(_median_center([r.live_ready for r in svc])),
        "live.load_end.mb": fmt_mb(_median_center([r.live_load_end for r in svc])),
        "live.idle_end.mb": fmt_mb(_median_center([r.live_idle_end for r in svc])),
        "live.fill_estimate": "not recorded"
        if estimate is None
        else f"{fmt_duration(estimate)} of load",
        "live.fill_measured": fill_text(live.fill_measured_s),
        "live.fill_share": fmt_pct(FILL_SHARE),
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


def _latency_values(res: Results) -> dict[str, str]:
    out: dict[str, str] = {}
    for pct in ("p50", "p95", "p99"):
        items = {n: getattr(r, pct) for n, r in res.service.items() if getattr(r, pct)}
        out[f"{pct}.band"] = _band(items, fmt_ms)
        out.update(
            _extreme(
                items,
                f"{pct}.",
                fmt_ms,
                best_low=True,
                best="lowest",
                worst="highest",
                unit_key="ms",
            )
        )
        verdict = latency_verdict(items)
        out[f"{pct}.verdict"] = (
            NOT_MEASURED if verdict is None else "moved" if verdict.moved else "barely moved"
        )
    out["latency.rule"] = (
        f"within {fmt_pct(LATENCY_REL)} or {LATENCY_ABS_MS:g} ms of the lowest, whichever is larger"
    )
    lates = [a.send_late_p99_ms for a in res.allocators if a.send_late_p99_ms is not None]
    out["loadgen.send_late_p99"] = fmt_ms(max(lates)) if lates else "not recorded"
    out["requests.total"] = fmt_count(sum(r.requests for r in res.service.values()))
    out["requests.errors"] = fmt_count(sum(r.errors for r in res.service.values()))
    return out


def _control_values(res: Results) -> dict[str, str]:
    speed = {n: c.allocs_per_s for n, c in res.control.items() if c.allocs_per_s}
    settled = {n: c.settled for n, c in res.control.items() if c.settled}
    out = {}
    out.update(
        _extreme(
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
        _extreme(
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
        _extreme(
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
    rest = _median_center([c.idle_s for c in res.control.values()])
    out["control.rested"] = fmt_seconds(rest) if rest is not None else "not recorded"
    return out


def _allocator_values(res: Results) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in res.allocators:
        p = f"alloc.{a.name}."
        out[p + "status"] = a.status
        out[p + "reason"] = a.reason or "none"
        out[p + "version"] = a.version or "not recorded"
        out[p + "library"] = a.library or "(the C library itself)"
        s, c = res.service.get(a.name), res.control.get(a.name)
        out[p + "peak.mb"] = fmt_mb(s.peak.center) if s else NOT_MEASURED
        out[p + "settled.mb"] = fmt_mb(s.settled.center) if s else NOT_MEASURED
        out[p + "shed"] = (
            fmt_pct(shed_fraction(s.peak.center, s.settled.center)) if s else NOT_MEASURED
        )
        out[p + "given_back"] = fmt_given_back(s.given_back.center if s and s.given_back else None)
        for when in ("peak", "settled"):
            ratio = getattr(s, f"overhead_{when}") if s else None
            out[p + f"overhead_{when}"] = fmt_ratio(ratio.center) if ratio else NOT_MEASURED
        out[p + "ready.mb"] = fmt_mb(s.ready.center) if s and s.ready else NOT_MEASURED
        out[p + "flags"] = (
            "; ".join(
                f"{f.experiment} repeat {f.repeat}: {f.flags}"
                for f in res.flagged
                if f.allocator == a.name
            )
            or "none"
        )
        out[p + "original_version"] = original_version(a)
        out[p + "fingerprint"] = (
            classify_fingerprint(s.peak.center, s.settled.center) if s else NOT_MEASURED
        )
        for pct in ("p50", "p95", "p99"):
            sample = getattr(s, pct) if s else None
            out[p + pct + ".ms"] = fmt_ms(sample.center) if sample else NOT_MEASURED
        out[p + "control.mops"] = (
            fmt_mops(c.allocs_per_s.center) if c and c.allocs_per_s else NOT_MEASURED
        )
        out[p + "control.settled.mb"] = (
            fmt_mb(c.settled.center) if c and c.settled else NOT_MEASURED
        )
        out[p + "control.mops_per_cpu"] = (
            fmt_mops_cpu(c.allocs_per_cpu_s.center) if c and c.allocs_per_cpu_s else NOT_MEASURED
        )
    return out


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


def named_values(
    run: Run, res: Results, fresh: Freshness, live: LivePayload | None = None
) -> dict[str, str]:
    """Every named value of one run, already formatted with its unit."""
    spec = run.spec
    method = method_of(run.manifest)
    full, res = res, res.ranked()
    if live is None:
        live = live_payload(run, [n for n in res.names if n in res.service])
    out: dict[str, str] = {}
    out.update(_run_values(run, fresh))
    out.update(_spec_values(spec))
    out.update(_memory_values(res))
    out.update(_overhead_values(res))
    out.update(_live_values(res, live, method))
    out.update(_method_values(method))
    out.update(_latency_values(res))
    out.update(_control_values(res))
    out.update(_allocator_values(res))
    out.update(_noise_values(full))
    if spec_threads := specview.get(spec, "control.threads"):
        ran = {c.threads for c in res.control.values() if c.threads}
        # "cores": the threads as run, one per CPU of the machine that ran the control
        out["control.threads"] = (
            str(max(ran)) if spec_threads == "cores" and ran else str(spec_threads)
        )
    started, finished = run.manifest.get("started"), run.manifest.get("finished")
    out["run.duration"] = _elapsed(started, finished)
    return out


def _elapsed(started: str | None, finished: str | None) -> str:
    from datetime import datetime

    try:
        a = datetime.fromisoformat(str(started))
        b = datetime.fromisoformat(str(finished))
    except (TypeError, ValueError):
        return "not recorded"
    return fmt_duration((b - a).total_seconds())
