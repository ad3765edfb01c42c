"""A synthetic run folder, written with the real table writer, for tests and benchmarks.

It follows the data contract (docs/guide/data-format.md) closely enough that the report cannot tell
it from a runner's output: memory sampled from the service's launch (a climb from nothing
during start-up), a staircase during load, a decay during idle and, on cgroup v2 only, a forced
reclaim; /churn answers that carry the answering worker and its live payload, which grows with
traffic and plateaus late in load; health probes during idle; a C++ control with CPU time; a
manifest with the method record, the rotated order, the workers' live sets, and one failed and
one skipped allocator. Numbers are chosen per allocator, so a test can swap two allocators'
numbers and watch the article follow. Variants (an Alloc with a `base`, its `env` and the
runner's `knobs` read-back records) are written as the runner writes them.

One module although it passes 500 lines: every table of the contract is written here from one
set of per-allocator numbers, and benchmarks/site_build.py loads this file by path; split, the
numbers of one table would drift from another's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.measure.retention import Phases, table_rows
from bench.measure.runstats import given_back_share, overhead_ratio
from bench.results.manifest import MANIFEST_FORMAT
from bench.results.records import method_record
from bench.results.tables import SCHEMAS, to_table, write_table
from bench.run.rounds import rotated
from bench.spec import BUILTIN_ALLOCATORS, parse_spec

__all__ = [
    "Alloc",
    "DEFAULT_ALLOCS",
    "REPO",
    "START_S",
    "WORKERS",
    "build_site",
    "knob",
    "live_at",
    "mkdocs_build",
    "swapped",
    "write_run",
]

REPO = Path(__file__).resolve().parents[2]

#: Seconds from the service's launch until every worker is ready (the start-up phase).
START_S = 2.0
#: Workers of the synthetic service (the spec's default).
WORKERS = 4
#: Versions the allocators report about themselves here (mallocinfo's formats).
VERSIONS = {
    "glibc": "glibc 2.36",
    "jemalloc": "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c",
    "tcmalloc": "gperftools 2.10",
    "mimalloc-v2": "2.0.9",
    "mimalloc-v3": "3.1.5",
    "mimalloc-bun": "3.0.3",
}
#: Why a forced reclaim was or was not possible, as the runner records it.
RECLAIM = {
    "v1": "none: cgroup v1 has no reclaim that works while tasks run",
    "v2": "cgroup v2 memory.reclaim",
}


@dataclass(frozen=True)
class Alloc:
    """The shape of one allocator's results (MB are 10^6 bytes).

    base_mb is the anonymous memory of the freshly started service (ready); peak and settled
    sit above base plus the live payload the traffic builds, as they must on a real run.
    """

    name: str
    base_mb: float = 50.0
    peak_mb: float = 300.0
    settled_mb: float = 280.0
    p50_ms: float = 1.2
    p99_ms: float = 4.0
    mops: float = 20.0
    control_settled_mb: float = 170.0
    status: str = "ok"
    reason: str | None = None
    version: str | None = None  # None: the usual one for its name (VERSIONS)
    cpu_mops: float | None = None  # control allocations per CPU-second; None: derived from mops
    base: str | None = None  # a variant: the stock allocator it changes
    env: tuple[tuple[str, str], ...] = ()  # a variant's settings, as (name, value) pairs
    knobs: tuple[dict[str, Any], ...] | None = None  # the read-back records; None: not recorded
    settle_s: float = 0.0  # seconds into idle until memory stayed within the settle band
    falling: bool = False  # memory still falling when idle ended (every repeat)
    timers: bool = True  # the manifest records the allocator's return timers
    missed_mb: float = 0.0  # a load peak between samples that only the kernel's mark saw
    saturated: bool = False  # the app could not keep up in every repeat


#: The return timers each family reports (bench.allocators.timers records), as read here.
TIMERS: dict[str, list[dict[str, Any]]] = {
    "glibc": [
        {"family": "glibc", "setting": "M_TRIM_THRESHOLD", "kind": "none", "value": None,
         "seconds": None, "meaning": "no timer: free() trims only the top of a heap"},
    ],
    "jemalloc": [
        {"family": "jemalloc", "setting": "opt.dirty_decay_ms", "kind": "timer",
         "value": "10000 ms", "seconds": 10.0, "meaning": "dirty pages decay over this time"},
        {"family": "jemalloc", "setting": "opt.muzzy_decay_ms", "kind": "timer",
         "value": "0 ms", "seconds": 0.0, "meaning": "muzzy pages decay over this time"},
    ],
    "tcmalloc": [
        {"family": "tcmalloc", "setting": "FLAGS_tcmalloc_release_rate", "kind": "pace",
         "value": "1.0", "seconds": None, "meaning": "returns spans as the program frees"},
    ],
    "mimalloc-v2": [
        {"family": "mimalloc", "setting": "decommit_delay", "kind": "timer", "value": "25 ms",
         "seconds": 0.025, "meaning": "free pages are decommitted after this delay"},
    ],
    "mimalloc-v3": [
        {"family": "mimalloc", "setting": "purge_delay", "kind": "timer", "value": "1000 ms",
         "seconds": 1.0, "meaning": "free pages are purged after this delay"},
    ],
}  # fmt: skip


#: The interpreter's own live heap beside the payload (what malloc counts as in use at start).
HEAP_BASE = 40e6


def knob(
    setting: str,
    asked: str,
    state: str = "verified",
    *,
    read_back: str | None = None,
    how: str | None = "mallctl",
    why: str | None = None,
    processes: int = 5,
) -> dict[str, Any]:
    """One read-back record as the runner writes it under an allocator's `knobs`
    (bench.allocators.knobs.merge: the reason says why a setting did not read back)."""
    return {
        "variable": "ENV",
        "asked_as": asked,
        "setting": setting,
        "asked": asked,
        "read_back": (asked if state == "verified" else None) if read_back is None else read_back,
        "state": state,
        "how": how,
        "processes": processes,
        "reason": why,
        "control": "not checked in the control: it runs the same library under the same "
        "environment, but the C++ program has no read-back",
    }


DEFAULT_ALLOCS = (
    Alloc("glibc", 48, 420, 410, 1.3, 4.1, 12.0, 190),
    Alloc("jemalloc", 52, 360, 250, 1.2, 4.0, 35.0, 175),
    Alloc("tcmalloc", 50, 340, 330, 1.2, 3.9, 40.0, 185),
    Alloc("mimalloc-v3", 46, 310, 150, 1.1, 3.8, 44.0, 170),
    Alloc("mimalloc-v2", status="failed", reason="preload ignored: library not found"),
    Alloc("mimalloc-bun", status="skipped", reason="source not reachable offline"),
)


def _churn_yaml() -> str:
    """The synthetic spec's live-set model: 4 workers x 700 buffers of 4-64 KB at the bound
    (about 97 MB), 40 start-up buffers each; pins arrive slowly, so the set fills late in
    load."""
    return (
        "  churn:\n    live_buffers: 700\n    initial_buffers: 40\n    alloc_per_call: 16\n"
        "    long_lived_share: 0.02\n    short_lifetime_s: 0.16\n"
    )


def _spec_yaml(
    name: str,
    allocs: tuple[Alloc, ...],
    load_s: float,
    idle_s: float,
    warmup_s: float,
    repeats: int,
    idle_rate: float,
    control_threads: int,
    control_idle_s: float,
    aa_pair: str | None = None,
) -> str:
    def entry(a: Alloc) -> str:
        if a.name in BUILTIN_ALLOCATORS:
            return f"  - {a.name}"
        env = ", ".join(f"{k}: {json.dumps(v)}" for k, v in a.env)
        return f"  - {{name: {a.name}, base: {a.base or 'glibc'}, env: {{{env}}}}}"

    names = "\n".join(entry(a) for a in allocs if not (aa_pair and a.name == f"{aa_pair}-again"))
    return (
        f"name: {name}\ntitle: What an allocator costs ({name})\n"
        f"description: A synthetic study for tests.\nrepeats: {repeats}\n"
        + (f"aa_pair: {aa_pair}\n" if aa_pair else "")
        + f"allocators:\n{names}\n"
        f"service:\n  warmup_s: {warmup_s}\n  load_s: {load_s}\n  idle_s: {idle_s}\n"
        f"  settle_window_s: {min(10.0, idle_s)}\n  idle_rate: {idle_rate}\n"
        + _churn_yaml()
        + f"control:\n  threads: {control_threads}\n  seconds: 5\n  repeats: 3\n"
        f"  idle_s: {control_idle_s}\n"
    )


def _jitter(repeat: int, repeats: int, amount: float = 0.01) -> float:
    """Repeats spread evenly around the nominal value, so median and mean are exact."""
    return 1.0 + amount * (repeat - (repeats - 1) / 2)


@dataclass(frozen=True)
class _Clock:
    """Where the phases of one service repeat fall (seconds since the launch)."""

    warmup_s: float
    load_s: float
    idle_s: float

    @property
    def load_start(self) -> float:
        return START_S + self.warmup_s

    @property
    def idle_start(self) -> float:
        return self.load_start + self.load_s

    @property
    def idle_end(self) -> float:
        return self.idle_start + self.idle_s


def live_at(t: float, ready: float, end: float, clock: _Clock, fill_s: float) -> float:
    """The synthetic live payload at time t: flat at `ready` until load, then growing with the
    traffic for fill_s seconds (or the whole load when it cannot fill) up to `end`, then flat."""
    ramp = min(fill_s, clock.load_s) or 1.0
    frac = min(1.0, max(0.0, (t - clock.load_start) / ramp))
    return ready + (end - ready) * frac


def _memory_series(
    a: Alloc, j: float, clock: _Clock, interval: float, reclaim: bool
) -> list[tuple[float, str, int]]:
    """(t_s, phase, anon_bytes): a climb from 0 at launch to the ready value, a flat warm-up,
    a staircase of 8 steps, a decay during idle, and a forced reclaim sample where one ran."""
    out: list[tuple[float, str, int]] = []
    t = 0.0
    while t <= clock.idle_end + 1e-9:
        if t < START_S:
            phase, v = "start", a.base_mb * t / START_S
        elif t < clock.load_start:
            phase, v = "warmup", a.base_mb
        elif t < clock.idle_start:
            step = min(7, int(8 * (t - clock.load_start) / clock.load_s))
            phase, v = "load", a.base_mb + (a.peak_mb - a.base_mb) * (step + 1) / 8
        else:
            frac = (t - clock.idle_start) / max(clock.idle_s, 1)
            phase = "idle"
            v = a.settled_mb if frac > 0.5 else a.peak_mb - (a.peak_mb - a.settled_mb) * 2 * frac
        out.append((round(t, 3), phase, int(v * 1e6 * j)))
        if t < START_S < t + interval:
            out.append((START_S, "start", int(a.base_mb * 1e6 * j)))  # the ready sample
        t += interval
    if reclaim:
        out.append((round(clock.idle_end + 0.05, 3), "reclaim", int(a.settled_mb * 0.98e6 * j)))
    return out


def _worker_shares(index: int) -> list[float]:
    """How the live payload splits over the workers (not evenly: the kernel spreads calls)."""
    raw = [1.0 + 0.03 * ((w + index) % WORKERS) for w in range(WORKERS)]
    total = sum(raw)
    return [x / total for x in raw]


def _requests(
    a: Alloc,
    repeat: int,
    clock: _Clock,
    *,
    count: int,
    pids: list[int],
    shares: list[float],
    ready_live: float,
    end_live: float,
    fill_s: float,
    idle_rate: float,
    failed: int,
    timeout_s: float,
) -> list[dict[str, Any]]:
    """Request rows of one repeat: a tenth as many in warm-up as in load, then health probes."""
    rows: list[dict[str, Any]] = []
    worker_turn = 0

    def add(phase: str, endpoint: str, at: float, lat_s: float, ok: bool) -> None:
        nonlocal worker_turn
        row: dict[str, Any] = {
            "allocator": a.name,
            "repeat": repeat,
            "endpoint": endpoint,
            "intended_s": at,
            "sent_s": at + 0.0002,
            "done_s": at + lat_s if ok else None,
            "status": 200 if ok else 0,
            "error": None if ok else "timeout",
            "phase": phase,
            "worker": None,
            "live_bytes": None,
        }
        if endpoint == "churn" and ok:
            w = worker_turn % WORKERS
            worker_turn += 1
            total = live_at(at + lat_s, ready_live, end_live, clock, fill_s)
            row["worker"] = pids[w]
            row["live_bytes"] = int(total * shares[w])
        rows.append(row)

    warm = max(1, count // 10)
    for i in range(warm):
        at = START_S + 0.3 + i * (clock.warmup_s - 0.3) / warm
        add("warmup", ("churn", "json", "churn", "xml")[i % 4], at, a.p50_ms / 1000, True)
    for i in range(count):
        at = clock.load_start + i * clock.load_s / count
        lat = (a.p50_ms if i % 100 < 98 else a.p99_ms) / 1000
        add("load", ("churn", "json", "churn", "xml")[i % 4], at, lat, i >= failed)
    if idle_rate > 0:
        n = int(clock.idle_s * idle_rate)
        for i in range(n):
            add("idle", "health", clock.idle_start + i / idle_rate, 0.0008, True)
    if failed:
        for row in rows[warm : warm + failed]:
            row["done_s"] = row["intended_s"] + timeout_s
    return rows


def _live_record(
    at: str, t_s: float, repeat: int, pids: list[int], shares: list[float], total: float
) -> dict[str, Any]:
    workers = [
        {
            "pid": pid,
            "churn_calls": 0 if at == "ready" else 50,
            "live_count": 0,
            "live_bytes": int(total * share),
            "long_count": 0,
            "short_count": 0,
            "pss_anon_bytes": None,
        }
        for pid, share in zip(pids, shares, strict=True)
    ]
    return {
        "repeat": repeat,
        "at": at,
        "t_s": round(t_s, 3),
        "live_bytes": sum(w["live_bytes"] for w in workers),
        "workers": workers,
    }


def _reading(family: str, anon: int, idle_share: float) -> dict[str, Any]:
    """One worker's retention reading in the shape service.retentionlog writes: live half of
    the memory, a fifth free inside the allocator, a tenth in pymalloc's arenas; jemalloc's
    dirty pages a fifth at the end of load, decaying to none over the idle."""
    live, free, arenas = anon // 2, anon // 5, anon // 10
    by_family: dict[str, dict[str, int]] = {
        "glibc": {"live": live, "free_in_heaps": free},
        "jemalloc": {
            "live": live,
            "active": live + free // 2,
            "dirty": int(free // 2 * (1 - idle_share)),
            "metadata": anon // 50,
        },
        "tcmalloc": {"live": live, "pageheap_free": free, "central_cache_free": 0,
                     "transfer_cache_free": 0, "thread_cache_free": 0},
        "mimalloc": {"current_commit": live + free},
    }  # fmt: skip
    return {
        "malloc": {"family": family, "bytes": by_family[family]},
        "heap": {"bytes": live, "source": "synthetic"},
        "python": {"bytes": {"arenas": arenas}, "source": {"arenas": "synthetic"}},
    }


def retention_rows(
    a: Alloc, repeat: int, *, warmup_s: float, load_s: float, idle_s: float
) -> list[dict[str, Any]]:
    """The retention table of one repeat of two workers, through the real pure pipeline
    (bench.measure.retention.table_rows) from readings every 5 s."""
    family = (
        a.name.split("-")[0]
        if a.name.split("-")[0] in ("glibc", "jemalloc", "tcmalloc", "mimalloc")
        else "glibc"
    )
    phases = Phases(origin=0.0, load_start=warmup_s, load_end=warmup_s + load_s,
                    idle_end=warmup_s + load_s + idle_s)  # fmt: skip
    lines: dict[str, list[dict[str, Any]]] = {}
    for worker in ("101", "102"):
        out = []
        t = 1.0
        while t < phases.idle_end:
            if t < phases.load_start:
                mb, share = a.base_mb, 0.0
            elif t <= phases.load_end:
                mb, share = a.base_mb + (a.peak_mb - a.base_mb) * (t - warmup_s) / load_s, 0.0
            else:
                share = (t - phases.load_end) / idle_s
                mb = a.peak_mb + (a.settled_mb - a.peak_mb) * share
            anon = int(mb * 1e6 / 2)
            out.append({"t": t, "internal": _reading(family, anon, share),
                        "kernel": {"Rss_Anon": anon, "LazyFree": 0}})  # fmt: skip
            t += 5.0
        lines[worker] = out
    return table_rows(lines, phases, allocator=a.name, repeat=repeat)


def write_run(
    results: Path,
    *,
    spec_name: str = "quick",
    run_id: str = "20261125T180000Z-quick",
    allocs: tuple[Alloc, ...] = DEFAULT_ALLOCS,
    repeats: int = 1,
    status: str = "complete",
    warmup_s: float = 10.0,
    load_s: float = 120.0,
    idle_s: float = 30.0,
    interval: float = 1.0,
    requests_per_alloc: int = 200,
    latest: str | None = "symlink",
    specs_dir: Path | None = None,
    started: str = "2026-11-25T18:00:00+00:00",
    disturbed: tuple[str, ...] = (),
    cgroup: str = "v1",
    idle_rate: float = 1.0,
    live_ready_mb: float = 6.0,
    live_end_mb: float = 96.0,
    failed_requests: Mapping[str, int] | None = None,
    control_threads: int = 4,
    control_cpus: int = 4,
    control_idle_s: float | None = None,
    aa_pair: str | None = None,
    aa_drift: float = 0.01,
    variants: tuple[Alloc, ...] = (),
) -> Path:
    """Write results/<spec>/<run id>/ and its `latest`; return the run folder.

    cgroup "v1" (this project's machine) records that no forced reclaim was possible and has
    no reclaim phase; "v2" runs one. `failed_requests` fails that many load requests of the
    named allocators (their repeats are flagged, as the runner flags them). A control with
    more threads than `control_cpus` is oversubscribed; one resting less than the service
    (`control_idle_s`, default the service's idle_s) is flagged too. `aa_pair` runs that
    allocator again as `<name>-again`, its memory and throughput `aa_drift` higher.
    `disturbed` names allocators whose service repeats are all disturbed, or "name#r" for
    repeat r alone. `variants` (Allocs with a `base`) follow the stock allocators, before the
    A/A duplicate, as a spec lists them.
    """
    failed_requests = dict(failed_requests or {})
    allocs = (*allocs, *variants)
    if aa_pair:
        first = next(a for a in allocs if a.name == aa_pair)
        allocs = (
            *allocs,
            replace(
                first,
                name=f"{aa_pair}-again",
                peak_mb=first.peak_mb * (1 + aa_drift),
                settled_mb=first.settled_mb * (1 + aa_drift),
                mops=first.mops * (1 + aa_drift),
            ),
        )
    control_idle_s = idle_s if control_idle_s is None else control_idle_s
    specs_dir = specs_dir or results.parent / "specs"
    text = _spec_yaml(
        spec_name,
        allocs,
        load_s,
        idle_s,
        warmup_s,
        repeats,
        idle_rate,
        control_threads,
        control_idle_s,
        aa_pair,
    )
    specs_dir.mkdir(parents=True, exist_ok=True)
    (specs_dir / f"{spec_name}.yaml").write_text(text, encoding="utf-8")
    spec = parse_spec(text, f"specs/{spec_name}.yaml")
    folder = results / spec_name / run_id
    folder.mkdir(parents=True, exist_ok=True)
    clock = _Clock(warmup_s, load_s, idle_s)
    fill_s = spec.service.fill_s or load_s
    timeout_s = spec.service.request_timeout_s
    oversubscribed = control_threads > control_cpus

    memory, summary, control, entries = [], [], [], []
    requests: list[dict[str, Any]] = []
    live_sets: dict[str, list[dict[str, Any]]] = {}
    for index, a in enumerate(allocs):
        if a.status != "ok":
            continue
        live_sets[a.name] = []
        for r in range(repeats):
            j = _jitter(r, repeats)
            pids = [1000 * (index + 1) + 10 * r + w for w in range(WORKERS)]
            shares = _worker_shares(index)
            ready_live = live_ready_mb * 1e6
            end_live = live_end_mb * 1e6 * (1 + 0.001 * index)
            memory += [
                {
                    "experiment": "service",
                    "allocator": a.name,
                    "repeat": r,
                    "t_s": t,
                    "phase": ph,
                    "anon_bytes": v,
                    "late_s": 0.0,
                }
                for t, ph, v in _memory_series(a, j, clock, interval, cgroup == "v2")
            ]
            failed = failed_requests.get(a.name, 0)
            requests += _requests(
                a,
                r,
                clock,
                count=requests_per_alloc,
                pids=pids,
                shares=shares,
                ready_live=ready_live,
                end_live=end_live,
                fill_s=fill_s,
                idle_rate=idle_rate,
                failed=failed,
                timeout_s=timeout_s,
            )
            live_sets[a.name] += [
                _live_record("ready", START_S - 0.1, r, pids, shares, ready_live),
                _live_record("load_end", clock.idle_start, r, pids, shares, end_live),
                _live_record("idle_end", clock.idle_end, r, pids, shares, end_live),
            ]
            recs = {x["at"]: x["live_bytes"] for x in live_sets[a.name][-3:]}
            peak = int(a.peak_mb * 1e6 * j)
            settled = int(a.settled_mb * 1e6 * j)
            ready_anon = int(a.base_mb * 1e6 * j)
            flags = [
                f"{failed} of {requests_per_alloc} load requests failed "
                f"(counted at {timeout_s:g} s or more)"
            ][: 1 if failed else 0]
            if a.saturated:
                flags.insert(0, "saturated: the app served 17 of 60 requests a second (0 failed)")
            if a.falling:
                idle_len = clock.idle_end - clock.idle_start
                flags.append(f"still returning memory when idle ended after {idle_len:.0f} s")
            summary.append(
                {
                    "experiment": "service",
                    "allocator": a.name,
                    "repeat": r,
                    "peak_anon_bytes": peak,
                    "settled_anon_bytes": settled,
                    "reclaimed_anon_bytes": int(a.settled_mb * 0.98e6 * j)
                    if cgroup == "v2"
                    else None,
                    "p50_ms": a.p50_ms * j,
                    "p95_ms": (a.p50_ms + a.p99_ms) / 2 * j,
                    "p99_ms": (timeout_s * 1000 if failed else a.p99_ms) * j,
                    # the nominal rate (the rows are a sample of the requests, not all of them)
                    "achieved_rps": 199.8 * (requests_per_alloc - failed) / requests_per_alloc,
                    "requests": requests_per_alloc,
                    "errors": failed,
                    "cpu_pressure_pct": 2.0,
                    "foreign_cpu_pct": 0.3,
                    "send_late_p99_ms": 0.8,
                    "disturbed": (hit := a.name in disturbed or f"{a.name}#{r}" in disturbed),
                    "disturbed_reason": "cpu pressure 41% above 20%" if hit else None,
                    "ready_anon_bytes": ready_anon,
                    "ready_live_bytes": recs["ready"],
                    "load_end_live_bytes": recs["load_end"],
                    "idle_end_live_bytes": recs["idle_end"],
                    "overhead_peak": overhead_ratio(
                        peak, ready_anon, recs["load_end"], recs["ready"]
                    ),
                    "overhead_settled": overhead_ratio(
                        settled, ready_anon, recs["idle_end"], recs["ready"]
                    ),
                    "given_back_share": given_back_share(peak, settled),
                    "idle_run_s": clock.idle_end - clock.idle_start,
                    "settle_time_s": a.settle_s,
                    "still_falling": a.falling,
                    "saturated": a.saturated,
                    "flagged": bool(flags),
                    "flags": "; ".join(flags) or None,
                    # the program's own heap: the live payload on the interpreter's own
                    "heap_source": "glibc mallinfo2 uordblks+hblkhd",
                    **{
                        f"{at}_heap_bytes": int(HEAP_BASE + recs[at])
                        for at in ("ready", "load_end", "idle_end")
                    },
                    **{
                        f"{at}_py_blocks": int(400_000 + recs[at] / 30_000)
                        for at in ("ready", "load_end", "idle_end")
                    },
                    "load_end_anon_bytes": peak,
                    # the kernel's charge: 30 MB of page cache and kernel memory on top, and
                    # a spike between samples where the allocator says so (missed_mb)
                    "load_peak_charged_bytes": peak + int((30 + a.missed_mb) * 1e6),
                    "load_end_charged_bytes": peak + int(30e6),
                    "load_peak_source": "memory.max_usage_in_bytes",
                }
            )
        for r in range(3):
            j = _jitter(r, 3, 0.01)
            ops = int(a.mops * 5e6 * j)
            busy = 5.0 * min(control_threads, control_cpus)
            per_cpu = (a.cpu_mops * 1e6 * j) if a.cpu_mops is not None else ops / busy
            cflags = []
            if control_idle_s < idle_s:
                cflags.append(f"rested {control_idle_s:g} s, less than the service's {idle_s:g} s")
            if oversubscribed:
                cflags.append(f"{control_threads} threads on {control_cpus} CPUs")
            control.append(
                {
                    "allocator": a.name,
                    "repeat": r,
                    "threads": control_threads,
                    "operations": ops,
                    "seconds": 5.0,
                    "allocs_per_s": a.mops * 1e6 * j,
                    "peak_anon_bytes": int(a.control_settled_mb * 1.1e6),
                    "settled_anon_bytes": int(a.control_settled_mb * 1e6 * j),
                    "live_bytes": 164_000_000,
                    "checksum": "ok",
                    "share": "shard",
                    "idle_s": control_idle_s,
                    "settle_window_s": min(10.0, idle_s, control_idle_s),
                    "cpu_user_s": ops / per_cpu * 0.9,
                    "cpu_sys_s": ops / per_cpu * 0.1,
                    "minor_faults": 40_000,
                    "major_faults": 0,
                    "allocs_per_cpu_s": per_cpu,
                    "oversubscribed": oversubscribed,
                    "cpus": control_cpus,
                }
            )
            summary.append(
                {
                    "experiment": "control",
                    "allocator": a.name,
                    "repeat": r,
                    "peak_anon_bytes": int(a.control_settled_mb * 1.1e6),
                    "settled_anon_bytes": int(a.control_settled_mb * 1e6 * j),
                    "allocs_per_s": a.mops * 1e6 * j,
                    "allocs_per_cpu_s": per_cpu,
                    "disturbed": False,
                    "flagged": bool(cflags),
                    "flags": "; ".join(cflags) or None,
                }
            )
            for k, ph in enumerate(("fill", "churn", "idle")):
                memory.append(
                    {
                        "experiment": "control",
                        "allocator": a.name,
                        "repeat": r,
                        "t_s": float(k),
                        "phase": ph,
                        "anon_bytes": int(a.control_settled_mb * 1e6),
                        "late_s": 0.0,
                    }
                )
    for a in allocs:
        lib_of = a.base or (a.name.removesuffix("-again") if aa_pair else a.name)
        lib = None if lib_of == "glibc" else f"/usr/lib/x86_64-linux-gnu/lib{lib_of}.so.2"
        ok = a.status == "ok"
        phases = [
            {"repeat": r, "phase": p, "start_s": s0, "end_s": s1}
            for r in range(repeats)
            for p, s0, s1 in (
                ("start", 0.0, START_S),
                ("warmup", START_S, clock.load_start),
                ("load", clock.load_start, clock.idle_start),
                ("idle", clock.idle_start, clock.idle_end),
                *((("reclaim", clock.idle_end, clock.idle_end + 0.1),) if cgroup == "v2" else ()),
            )
        ]
        entries.append(
            {
                "name": a.name,
                "kind": "system",
                "base": a.base,
                "same_as": aa_pair if aa_pair and a.name == f"{aa_pair}-again" else None,
                "library": lib,
                "version": (a.version or VERSIONS.get(a.base or a.name, "1.0")) if ok else None,
                "sha256": ("ab" * 32) if ok else None,
                "env": dict(a.env),
                **({} if a.knobs is None else {"knobs": list(a.knobs)}),
                **(
                    {"timers": TIMERS.get(a.base or a.name.removesuffix("-again"), [])}
                    if a.timers and ok
                    else {}
                ),
                "status": a.status,
                "reason": a.reason,
                "evidence": {}
                if not ok
                else {
                    "service": [
                        {
                            "repeat": 0,
                            "pid": 100 + i,
                            "role": "worker",
                            "malloc_library": lib or "/usr/lib/x86_64-linux-gnu/libc.so.6",
                            "mapped": True,
                        }
                        for i in range(4)
                    ],
                    "control": [
                        {
                            "repeat": r,
                            "pid": 200 + r,
                            "malloc_library": lib or "libc",
                            "mapped": True,
                        }
                        for r in range(3)
                    ],
                },
                "phases": {"service": phases if ok else [], "control": []},
                "loadgen": {"send_late_p99_ms": 0.8, "cpu_pct": 7.5, "stages": []},
                "sampler": [
                    {
                        "repeat": r,
                        "reclaim": RECLAIM[cgroup],
                        "reclaim_ran": cgroup == "v2",
                        "stats_calls": [
                            {"at": at, "start_s": t0, "end_s": round(t0 + 0.007, 3), "ok": True}
                            for at, t0 in (
                                ("ready", START_S),
                                ("load_end", clock.idle_start),
                                ("idle_end", clock.idle_end),
                            )
                        ],
                    }
                    for r in range(repeats)
                ]
                if ok
                else [],
                "live_set": live_sets.get(a.name, []),
            }
        )
    write_table(folder / "memory.arrow", "memory", to_table("memory", memory))
    write_table(folder / "requests.arrow", "requests", _requests_table(requests))
    write_table(folder / "control.arrow", "control", to_table("control", control))
    write_table(folder / "summary.arrow", "summary", to_table("summary", summary))
    retention = [
        row
        for a in allocs
        if a.status == "ok"
        for r in range(repeats)
        for row in retention_rows(a, r, warmup_s=warmup_s, load_s=load_s, idle_s=idle_s)
    ]
    if retention:
        write_table(folder / "retention.arrow", "retention", to_table("retention", retention))
    names = [a.name for a in allocs]
    manifest = {
        "format": MANIFEST_FORMAT,
        "tool": {
            "name": "allocstudy",
            "version": "0.1.0",
            "git_commit": "abc1234",
            "git_dirty": False,
        },
        "run_id": run_id,
        "spec_name": spec_name,
        "spec_file": f"specs/{spec_name}.yaml",
        "spec_sha256": spec.spec_hash,
        "spec": spec.model_dump(mode="json"),
        "status": status,
        "started": started,
        "finished": "2026-11-25T18:20:00+00:00",
        "host": {
            "hostname": "testhost",
            "cpu_model": "Test CPU @ 2.0GHz",
            "cores": 2,
            "memory_bytes": 25_000_000_000,
            "kernel": "6.1.0-test",
            "glibc": "2.36",
            "python": "3.11.7",
        },
        "confounds": {
            "thp": {"before": "madvise", "during": "never", "restored": True, "writable": True},
            "swap_bytes": 0,
            "governor": None,
            "cgroup_mode": cgroup,
            "page_cache_dropped": True,
            "pinning": {"service_cpus": [1], "loadgen_cpus": [0]},
            "python_malloc": "pymalloc",
            "cpu_pressure": {"avg10_start": 0.5, "avg10_end": 3.2},
        },
        "method": method_record(spec, can_reclaim=cgroup == "v2", reclaim_how=RECLAIM[cgroup]),
        "order": [{"round": k, "allocators": rotated(names, k)} for k in range(max(repeats, 3))],
        "allocators": entries,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    link = results / spec_name / "latest"
    if link.is_symlink() or link.exists():
        link.unlink()
    if latest == "symlink":
        link.symlink_to(run_id)
    elif latest == "file":
        link.write_text(run_id + "\n", encoding="utf-8")
    return folder


def _requests_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Request rows as a table, column by column (a default-sized run has 720,000 rows)."""
    schema = SCHEMAS["requests"]
    return pa.Table.from_pydict(
        {f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema
    )


def swapped(allocs: tuple[Alloc, ...], a: str, b: str) -> tuple[Alloc, ...]:
    """The same allocators with the numbers of a and b exchanged (names stay in place)."""
    by = {x.name: x for x in allocs}
    return tuple(
        replace(by[b], name=a) if x.name == a else replace(by[a], name=b) if x.name == b else x
        for x in allocs
    )


def mkdocs_build(
    site_dir: Path,
    results: Path,
    config: Path | None = None,
    extra_env: dict[str, str] | None = None,
    *,
    strict: bool = True,
    quiet: bool = True,
) -> subprocess.CompletedProcess[str]:
    """A real `mkdocs build` in a fresh process, reading the given results folder.

    `quiet` (-q) shows errors only; a test of a warning turns it off.
    """
    # The checkout under test first: the venv's editable install may point at another one.
    path = os.pathsep.join(x for x in (str(REPO), os.environ.get("PYTHONPATH")) if x)
    env = {
        **os.environ,
        "ALLOCSTUDY_RESULTS": str(results),
        "PYTHONPATH": path,
        "NO_MKDOCS_2_WARNING": "1",  # as the Makefile sets it: no 10-line notice per build
        **(extra_env or {}),
    }
    mkdocs = Path(sys.executable).with_name("mkdocs")
    return subprocess.run(
        [
            str(mkdocs),
            "build",
            "--strict" if strict else "--no-strict",
            *(["-q"] if quiet else []),
            "-f",
            str(config or REPO / "mkdocs.yml"),
            "-d",
            str(site_dir),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


_BUILT: dict[str, Path] = {}


def build_site(base: Path) -> Path:
    """Build the synthetic site once per test session (both test folders share it).

    The two studies differ in method as real machines do: `quick` on cgroup v1 (no forced
    reclaim), `default` on cgroup v2 (a forced reclaim ran) with three repeats.
    """
    if "site" not in _BUILT:
        results = base / "results"
        write_run(results)
        write_run(
            results,
            spec_name="default",
            run_id="20261124T100000Z-default",
            repeats=3,
            started="2026-11-24T10:00:00+00:00",
            latest="file",
            cgroup="v2",
        )
        site = base / "site"
        proc = mkdocs_build(site, results)
        if proc.returncode != 0:
            raise RuntimeError(f"mkdocs build failed:\n{proc.stdout}\n{proc.stderr}")
        _BUILT["site"] = site
    return _BUILT["site"]
