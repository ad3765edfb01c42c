"""The experiment as a reader sees it: the spec as a table, the confounds as set and observed.

Both tables are built from the run's manifest (the resolved spec it recorded), never from the
spec file on disk, so they describe the data shown even when the file has changed since.
"""

from __future__ import annotations

from typing import Any

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.datatable import Column, html_table
from bench.report.run import Run
from bench.report.units import fmt_bytes_kb, fmt_count, fmt_mb, fmt_pct, fmt_seconds

__all__ = ["allocators_table", "confounds_table", "spec_table"]


def spec_table(run: Run) -> str:
    s, g = run.spec, specview.get
    mix = ", ".join(f"{fmt_pct(v)} {k}" for k, v in specview.mix_shares(s))
    phases = (
        f"warm-up {fmt_seconds(g(s, 'service.warmup_s'))}, "
        f"load {fmt_seconds(g(s, 'service.load_s'))}, "
        f"idle {fmt_seconds(g(s, 'service.idle_s'))}, then a forced reclaim"
    )
    warm_rate = g(s, "service.warmup_rate")
    warm = f"{warm_rate:g}" if warm_rate else f"{float(g(s, 'service.rate')) / 10:g}"
    rows = [
        [
            "Service processes",
            f"{g(s, 'service.workers')} uvicorn workers",
            "no per-request worker recycling, which would hide fragmentation",
        ],
        [
            "Load",
            f"{g(s, 'service.rate'):g} requests/s, open loop",
            f"sent on a fixed schedule; latency counted from the scheduled time (warm-up at "
            f"{warm} requests/s)",
        ],
        ["Phases", phases, "the same timeline for every allocator"],
        [
            "Memory sampling",
            f"every {fmt_seconds(g(s, 'service.sample_interval_s'))}",
            "anonymous memory of all service processes",
        ],
        [
            "Settled",
            f"median of the last {fmt_seconds(g(s, 'service.settle_window_s'))} of idle",
            "after the allocator's own return timers had their chance",
        ],
        [
            "Live set (/churn)",
            f"{fmt_count(g(s, 'service.churn.live_buffers'))} buffers per worker, "
            f"{fmt_bytes_kb(int(g(s, 'service.churn.min_bytes')))} to "
            f"{fmt_bytes_kb(int(g(s, 'service.churn.max_bytes')))}",
            f"about {fmt_mb(specview.live_bytes(s))} across workers; "
            f"{fmt_count(g(s, 'service.churn.free_per_call'))} survivors replaced per call",
        ],
        [
            "Traffic mix",
            mix or "none",
            "churn keeps the live set; json and xml parse and build "
            f"documents of {g(s, 'service.payload.min_items')} to "
            f"{g(s, 'service.payload.max_items')} line items",
        ],
        [
            "Python small objects",
            str(g(s, "service.python_malloc")),
            "pymalloc serves objects up to 512 bytes itself; malloc sends all to the allocator",
        ],
        ["Repeats", str(g(s, "repeats")), "per allocator, service experiment"],
    ]
    if g(s, "control.enabled"):
        rows.append(
            [
                "C++ control",
                f"{g(s, 'control.threads')} threads, live set "
                f"{fmt_mb(specview.control_live_bytes(s))}",
                f"{fmt_seconds(g(s, 'control.seconds'))} of churn, "
                f"{fmt_seconds(g(s, 'control.idle_s'))} of rest, "
                f"{g(s, 'control.repeats')} repeats",
            ]
        )
    else:
        rows.append(["C++ control", "disabled in this spec", ""])
    return html_table(
        [Column("parameter"), Column("value"), Column("why it matters")],
        rows,
        table_id="spec-table",
    )


def _source(entry: dict[str, Any]) -> str:
    if entry.get("library"):
        return str(entry["library"])
    if entry.get("status") == "ok":
        return "the C library (no preload)"
    return "not resolved"


def allocators_table(run: Run, res: Results) -> str:
    entries = {e.get("name"): e for e in run.manifest.get("allocators") or []}
    rows = []
    for a in res.allocators:
        e = entries.get(a.name, {})
        env = " ".join(f"{k}={v}" for k, v in sorted(a.env.items()))
        what = a.kind or "unknown"
        if a.base:
            what += f" (variant of {a.base})"
        status = a.status if not a.reason else f"{a.status}: {a.reason}"
        rows.append([a.name, what, a.version or "not recorded", _source(e), env or "none", status])
    return html_table(
        [
            Column("allocator"),
            Column("kind"),
            Column("version"),
            Column("library"),
            Column("environment"),
            Column("status"),
        ],
        rows,
        table_id="allocators-table",
    )


def _yesno(x: Any) -> str:
    return "not recorded" if x is None else "yes" if x else "no"


def _pct(x: Any) -> str:
    return f"{float(x):.1f}%" if isinstance(x, int | float) else "not recorded"


def _cpus(x: Any) -> str:
    if not x:
        return "any CPU"
    return ", ".join(str(c) for c in x) if isinstance(x, list | tuple) else str(x)


def _thp(thp: Any) -> str:
    if not isinstance(thp, dict):
        return str(thp) if thp else "not recorded"
    text = f"{thp.get('during') or 'not recorded'} during the run"
    if thp.get("before"):
        text += f" (was {thp['before']}; restored: {_yesno(thp.get('restored'))})"
    if thp.get("error"):
        text += f"; {thp['error']}"
    return text


def _pinning(pin: Any) -> str:
    if not isinstance(pin, dict) or not pin:
        return "not recorded"
    harness = pin.get("loadgen_cpus", pin.get("harness_cpus"))
    if not pin.get("service_cpus") and not harness:
        return "not pinned"
    return f"service on CPU {_cpus(pin.get('service_cpus'))}, load generator on {_cpus(harness)}"


def confounds_table(run: Run) -> str:
    c = run.manifest.get("confounds") or {}
    machine = run.spec.get("machine") or {}
    setting = machine.get("set_confounds", True)
    pressure = c.get("cpu_pressure") or {}
    swap = c.get("swap_bytes")
    dropped = c.get("page_cache_dropped")
    cgroup = str(c.get("cgroup_mode") or "not recorded")
    if c.get("cgroup") and str(c.get("cgroup")) != cgroup:
        cgroup += f" ({c['cgroup']})"
    rows = [
        [
            "Swap",
            "off",
            "off" if swap == 0 else f"{fmt_mb(swap)} configured" if swap else "not recorded",
        ],
        ["Transparent huge pages", "never" if setting else "left as found", _thp(c.get("thp"))],
        [
            "CPU frequency governor",
            "fixed",
            str(c.get("governor") or "no governor available on this machine"),
        ],
        [
            "Core pinning",
            "load generator away from the service"
            if machine.get("pin_cores", True)
            else "not pinned",
            _pinning(c.get("pinning")),
        ],
        [
            "Page cache",
            "dropped before each repeat" if setting else "left as found",
            "dropped" if dropped else "not dropped" if dropped is False else "not recorded",
        ],
        ["Memory accounting", f"cgroup: {machine.get('cgroup', 'auto')}", cgroup],
        [
            "Python small-object allocator",
            str(specview.get(run.spec, "service.python_malloc")),
            str(c.get("python_malloc") or "not recorded"),
        ],
        [
            "CPU pressure (avg10)",
            "as low as possible",
            f"{_pct(pressure.get('avg10_start'))} at start, "
            f"{_pct(pressure.get('avg10_end'))} at end"
            if isinstance(pressure, dict) and pressure
            else "not recorded",
        ],
    ]
    return html_table(
        [Column("confound"), Column("as set"), Column("as observed")],
        rows,
        table_id="confounds-table",
    )
