"""The experiment as a reader sees it: the spec as a table, the confounds as set and observed.

Both tables are built from the run's manifest (the resolved spec it recorded), never from the
spec file on disk, so they describe the data shown even when the file has changed since.
"""

from __future__ import annotations

from typing import Any

from bench.allocators.timers import HORIZON_FACTOR
from bench.report import specview
from bench.report.aggregate import Results, ServiceResult
from bench.report.datatable import Column, html_table
from bench.report.live import FILL_SHARE, LivePayload, fill_text, live_payload
from bench.report.prose.rankings import value_text
from bench.report.recorded_method import Method, method_of, reclaim_ran, reclaim_reason
from bench.report.recycled import recycling_note
from bench.report.runfolders import Run
from bench.report.stats import Sample
from bench.report.units import (
    fmt_bytes_kb,
    fmt_count,
    fmt_duration,
    fmt_given_back,
    fmt_mb,
    fmt_pct,
    fmt_ratio,
    fmt_seconds,
    fmt_share,
    join_names,
)
from bench.report.versions import original_version

__all__ = [
    "OVERHEAD_HELP",
    "allocator_label",
    "allocators_table",
    "confounds_table",
    "headline_table",
    "left_out_note",
    "MEMORY_COLUMNS",
    "order_text",
    "ratio_text",
    "reclaim_text",
    "spec_table",
]

#: What the overhead ratio is, for table headings' tooltips.
OVERHEAD_HELP = (
    "memory grown since the service was ready, per byte of live payload grown in the same time"
)

#: The columns every table of the service's memory per allocator starts with (the headline
#: table here, the table behind the peak-and-settled chart).
MEMORY_COLUMNS = (
    Column("allocator"),
    Column("peak", True),
    Column("settled", True),
    Column("overhead at peak", True, OVERHEAD_HELP),
    Column("overhead settled", True, OVERHEAD_HELP),
    Column("given back", True, "share of the peak given back by the end of idle"),
)


#: How each document-size distribution reads.
_DISTRIBUTIONS = {
    "log-uniform": "as many documents in each factor of size: most are small, a few are large, "
    "as real API traffic is",
    "uniform": "every size between the bounds equally likely",
}


def _phases(s: dict[str, Any], method: Method) -> str:
    g = specview.get
    text = (
        f"start-up (launch until every worker is ready), "
        f"warm-up {fmt_seconds(g(s, 'service.warmup_s'))}, "
        f"load {fmt_seconds(g(s, 'service.load_s'))}, "
        + (
            f"idle until memory has settled ({fmt_seconds(specview.idle_floor_s(s))} at least, "
            f"{HORIZON_FACTOR:g} times the allocator's return timers, "
            f"{fmt_seconds(g(s, 'service.idle_s'))} "
            "at most)"
            if g(s, "service.idle_ends") == "settled"
            else f"idle {fmt_seconds(g(s, 'service.idle_s'))}"
        )
    )
    if method.reclaim_possible:
        return text + ", then a forced reclaim"
    if method.reclaim_possible is False:
        return text + "; no forced reclaim (none was possible here)"
    return text


def reclaim_text(method: Method, ran: dict[str, bool | None]) -> str:
    """Whether a forced reclaim was possible and how, and whether it ran, as recorded."""
    if method.reclaim_possible is None:
        return "not recorded"
    if not method.reclaim_possible:
        return f"not possible: {reclaim_reason(method.reclaim_how) or 'no reason recorded'}"
    how = method.reclaim_how or "how not recorded"
    values = [v for v in ran.values() if v is not None]
    if values and all(values):
        return f"ran after idle ({how})"
    if values and not any(values):
        return f"possible ({how}) but did not run"
    if values:
        missed = [n for n, v in ran.items() if v is False]
        return f"ran after idle ({how}), except for {join_names(missed)}"
    return f"possible ({how})"


def order_text(method: Method) -> str:
    """The order the allocators ran in, round by round, as recorded."""
    if not method.rounds:
        return "not recorded"
    rounds = "; ".join(f"round {r}: {', '.join(names)}" for r, names in method.rounds)
    return f"{method.order_rule}: {rounds}" if method.order_rule else rounds


def threads_text(threads: Any) -> str:
    """The control's threads as the spec asked: '4 threads', or one per CPU."""
    if threads == "cores":
        return "one thread per CPU of the machine"
    return f"{threads} thread{'' if threads == 1 else 's'}"


def warmup_text(warmup_s: Any) -> str:
    """'2 s of warm-up (not counted), ' or '' without one."""
    return f"{fmt_seconds(float(warmup_s))} of warm-up (not counted), " if warmup_s else ""


def spec_table(run: Run, live: LivePayload | None = None) -> str:
    """The method as a table: the spec as run, and the choices the run recorded."""
    s, g = run.spec, specview.get
    method = method_of(run.manifest)
    names = [a.get("name") for a in run.manifest.get("allocators") or [] if a.get("name")]
    mix = ", ".join(f"{fmt_pct(v)} {k}" for k, v in specview.mix_shares(s))
    warm = f"{specview.warmup_rate(s):g}"
    sampled = method.memory_sampled_from or "the start of each allocator's run"
    distribution = str(g(s, "service.payload.distribution"))
    if live is None:
        live = live_payload(run, [str(n) for n in names])
    estimate = method.live_set_fill_s
    rows = [
        [
            "Service processes",
            f"{g(s, 'service.workers')} uvicorn workers",
            recycling_note(run.spec),
        ],
        [
            "Load",
            f"{specview.load_text(s)}, open loop"
            + (
                ", Poisson arrivals (seeded exponential gaps)"
                if g(s, "service.arrivals") == "poisson"
                else ""
            ),
            f"sent on a fixed schedule; latency counted from the scheduled time (warm-up at "
            f"{warm} requests/s)",
        ],
        [
            "Phases",
            _phases(s, method),
            "the same timeline for every allocator"
            if g(s, "service.idle_ends") != "settled"
            else "the same timeline for every allocator until idle; each idles as long as its "
            "own timers and memory ask",
        ],
        [
            "Memory sampling",
            f"every {fmt_seconds(g(s, 'service.sample_interval_s'))}, from the {sampled}",
            "anonymous memory of all service processes, start-up included",
        ],
        [
            "Settled",
            f"median of the last {fmt_seconds(g(s, 'service.settle_window_s'))} of idle",
            "after the allocator's own return mechanisms had their chance",
        ],
        [
            "Live set (/churn)",
            f"starts at {fmt_count(specview.start_buffers(s))} buffers per worker "
            f"and grows with the traffic to a bound of "
            f"{fmt_count(g(s, 'service.churn.live_buffers'))} per worker "
            f"(about {fmt_mb(specview.live_bytes(s))} across workers)",
            f"each call allocates {fmt_count(g(s, 'service.churn.alloc_per_call'))} buffers of "
            f"{fmt_bytes_kb(int(g(s, 'service.churn.min_bytes')))} to "
            f"{fmt_bytes_kb(int(g(s, 'service.churn.max_bytes')))}; "
            f"{fmt_share(float(g(s, 'service.churn.long_lived_share')))} of them live on as "
            "pins until evicted, the rest are freed after about "
            f"{specview.short_lifetime_text(s)}, leaving holes under the pins",
        ],
        [
            "Live set fill",
            f"estimated: {'not recorded' if estimate is None else fmt_duration(estimate)} "
            f"of load; measured: {fill_text(live.fill_measured_s)}",
            f"measured = when the recorded live payload first reached "
            f"{fmt_pct(FILL_SHARE)} of its end-of-load value (median across allocators)",
        ],
        [
            "Traffic mix",
            mix or "none",
            "churn builds and turns over the live set; json and xml parse and build documents",
        ],
        [
            "Documents (/json, /xml)",
            specview.payload_text(s),
            _DISTRIBUTIONS.get(distribution, distribution),
        ],
        [
            "Idle traffic",
            method.idle_traffic or "not recorded",
            "what calls into the allocator while the service rests; a purge that waits for "
            "allocator activity needs some",
        ],
        [
            "Forced reclaim",
            reclaim_text(method, reclaim_ran(run.manifest, [str(n) for n in names])),
            "settled is taken before any reclaim, after the allocators' own mechanisms",
        ],
        [
            "Failed requests",
            method.latency_failures or "not recorded",
            "charged in the latency percentiles, so an allocator cannot look faster by "
            "dropping its slowest requests",
        ],
        [
            "Python small objects",
            str(g(s, "service.python_malloc")),
            "pymalloc serves objects up to 512 bytes itself; malloc sends all to the allocator",
        ],
        ["Repeats", str(g(s, "repeats")), "per allocator, service experiment"],
        [
            "Order",
            order_text(method),
            "no allocator always runs first on a cold machine or last on a warm one",
        ],
    ]
    if g(s, "control.enabled"):
        rows.append(
            [
                "C++ control",
                f"{threads_text(g(s, 'control.threads'))}, live set "
                f"{fmt_mb(specview.control_live_bytes(s))}",
                warmup_text(g(s, "control.warmup_s"))
                + f"{fmt_seconds(g(s, 'control.seconds'))} of churn, "
                f"{fmt_seconds(specview.control_idle_s(s))} of rest, "
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


def left_out_note(r: ServiceResult, noun: str) -> str | None:
    """How many repeats the figures left out: "2 repeats left out" when memory and latency
    left out the same, else each apart ("repeats left out: 2 of its latency"), since a
    repeat disturbed only in its timing keeps its memory (bench.report.aggregate)."""
    timed = r.p99.excluded if r.p99 is not None else 0
    if r.excluded and r.excluded == timed:
        return f"{r.excluded} {noun}{'s' if r.excluded > 1 else ''} left out"
    parts = [f"{k} of its {what}" for k, what in ((r.excluded, "memory"), (timed, "latency")) if k]
    return f"{noun}s left out: {', '.join(parts)}" if parts else None


def headline_table(res: Results) -> str:
    """Peak, settled, the overhead ratio at both, and the share given back, per allocator.

    Leanest settled first; each value with the half-width of its 95% interval when the run
    had repeats. An allocator without service data is listed with its reason, the A/A
    duplicate and the variants are labelled and kept beside their stock allocator
    (Results.grouped), and a flagged or left-out repeat is named in the last column.
    """
    order = res.grouped(sorted(res.service, key=lambda n: (res.service[n].settled.center, n)))
    rows: list[list[Any]] = []
    for n in order:
        r = res.service[n]
        flagged = [f for f in res.flagged if f.allocator == n and f.experiment == "service"]
        notes = [f"repeat {f.repeat}: {f.flags}" for f in flagged]
        if note := left_out_note(r, "repeat"):
            notes.append(note)
        rows.append(
            [
                allocator_label(res, n),
                value_text(r.peak, fmt_mb),
                value_text(r.settled, fmt_mb),
                ratio_text(r.overhead_peak),
                ratio_text(r.overhead_settled),
                fmt_given_back(r.given_back.center if r.given_back else None),
                "; ".join(notes) or "none",
            ]
        )
    for name, why in res.missing("service"):
        rows.append([allocator_label(res, name), "not measured", "", "", "", "", why])
    reps = max((r.settled.n + r.settled.excluded for r in res.service.values()), default=0)
    how = (
        f"mean of {reps} repeats ± the half-width of the 95% interval"
        if reps > 1
        else "a single repeat, no interval"
    )
    return html_table(
        [*MEMORY_COLUMNS, Column("flags")],
        rows,
        table_id="headline-table",
        caption=f"Memory of the service per allocator ({how}), leanest settled first"
        + (", each variant after its stock allocator" if res.variants else "")
        + ". Overhead: memory grown since the service was ready per byte of live payload grown.",
    )


def allocator_label(res: Results, name: str) -> str:
    """An allocator's name in a table: the A/A duplicate says which allocator it runs again,
    a variant which stock allocator it changes ("jemalloc-decay0 (variant of jemalloc)")."""
    info = next((a for a in res.allocators if a.name == name), None)
    if info is not None and info.same_as:
        return f"{name} (A/A of {info.same_as})"
    if info is not None and info.base:
        return f"{name} (variant of {info.base})"
    return name


def ratio_text(sample: Sample | None) -> str:
    """An overhead ratio of the results, or 'not recorded' (the run had none for it)."""
    return value_text(sample, fmt_ratio) if sample else "not recorded"


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
        if a.same_as:
            what += f" (A/A: {a.same_as} run again)"
        status = a.status if not a.reason else f"{a.status}: {a.reason}"
        rows.append(
            [
                a.name,
                what,
                a.version or "not recorded",
                original_version(a),
                _source(e),
                env or "none",
                status,
            ]
        )
    return html_table(
        [
            Column("allocator"),
            Column("kind"),
            Column("version here"),
            Column("original study"),
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
