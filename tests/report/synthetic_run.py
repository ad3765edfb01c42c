"""A synthetic run folder, written with the real table writer, for tests and benchmarks.

It follows the data contract (docs/guide/data-format.md) closely enough that the report cannot tell
it from a runner's output: a staircase during load, a decay during idle, latency rows, a C++
control, a manifest with one failed and one skipped allocator. Numbers are chosen per
allocator, so a test can swap two allocators' numbers and watch the article follow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.rundir import MANIFEST_FORMAT
from bench.spec import BUILTIN_ALLOCATORS, parse_spec
from bench.tables import SCHEMAS, to_table, write_table

__all__ = ["Alloc", "DEFAULT_ALLOCS", "REPO", "build_site", "mkdocs_build", "swapped", "write_run"]

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Alloc:
    """The shape of one allocator's results (MB are 10^6 bytes)."""

    name: str
    base_mb: float = 150.0
    peak_mb: float = 300.0
    settled_mb: float = 280.0
    p50_ms: float = 1.2
    p99_ms: float = 4.0
    mops: float = 20.0
    control_settled_mb: float = 170.0
    status: str = "ok"
    reason: str | None = None


DEFAULT_ALLOCS = (
    Alloc("glibc", 160, 420, 410, 1.3, 4.1, 12.0, 190),
    Alloc("jemalloc", 150, 360, 250, 1.2, 4.0, 35.0, 175),
    Alloc("tcmalloc", 155, 340, 330, 1.2, 3.9, 40.0, 185),
    Alloc("mimalloc-v3", 140, 310, 150, 1.1, 3.8, 44.0, 170),
    Alloc("mimalloc-v2", status="failed", reason="preload ignored: library not found"),
    Alloc("mimalloc-bun", status="skipped", reason="source not reachable offline"),
)


def _spec_yaml(
    name: str,
    allocs: tuple[Alloc, ...],
    load_s: float,
    idle_s: float,
    warmup_s: float,
    repeats: int,
) -> str:
    names = "\n".join(
        f"  - {a.name}" if a.name in BUILTIN_ALLOCATORS else f"  - {{name: {a.name}, base: glibc}}"
        for a in allocs
    )
    return (
        f"name: {name}\ntitle: What an allocator costs ({name})\n"
        f"description: A synthetic study for tests.\nrepeats: {repeats}\n"
        f"allocators:\n{names}\n"
        f"service:\n  warmup_s: {warmup_s}\n  load_s: {load_s}\n  idle_s: {idle_s}\n"
        f"  settle_window_s: {min(10.0, idle_s)}\n"
        "control:\n  seconds: 5\n  repeats: 3\n"
    )


def _jitter(repeat: int, repeats: int, amount: float = 0.01) -> float:
    """Repeats spread evenly around the nominal value, so median and mean are exact."""
    return 1.0 + amount * (repeat - (repeats - 1) / 2)


def _memory_series(
    a: Alloc,
    repeat: int,
    repeats: int,
    warmup_s: float,
    load_s: float,
    idle_s: float,
    interval: float,
) -> list[tuple[float, str, int]]:
    """(t_s, phase, anon_bytes): a ramp, a staircase of 8 steps, a decay, a flat reclaim."""
    j = _jitter(repeat, repeats)
    out = []
    reclaim_s = 10.0
    t = 0.0
    total = warmup_s + load_s + idle_s + reclaim_s
    while t <= total + 1e-9:
        if t < warmup_s:
            phase, v = "warmup", a.base_mb * (0.5 + 0.5 * t / max(warmup_s, 1))
        elif t < warmup_s + load_s:
            step = min(7, int(8 * (t - warmup_s) / load_s))
            phase, v = "load", a.base_mb + (a.peak_mb - a.base_mb) * (step + 1) / 8
        elif t < warmup_s + load_s + idle_s:
            frac = (t - warmup_s - load_s) / max(idle_s, 1)
            phase = "idle"
            v = a.settled_mb if frac > 0.5 else a.peak_mb - (a.peak_mb - a.settled_mb) * 2 * frac
        else:
            phase, v = "reclaim", a.settled_mb * 0.98
        out.append((round(t, 3), phase, int(v * 1e6 * j)))
        t += interval
    return out


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
) -> Path:
    """Write results/<spec>/<run id>/ and its `latest`; return the run folder."""
    specs_dir = specs_dir or results.parent / "specs"
    text = _spec_yaml(spec_name, allocs, load_s, idle_s, warmup_s, repeats)
    specs_dir.mkdir(parents=True, exist_ok=True)
    (specs_dir / f"{spec_name}.yaml").write_text(text, encoding="utf-8")
    spec = parse_spec(text, f"specs/{spec_name}.yaml")
    folder = results / spec_name / run_id
    folder.mkdir(parents=True, exist_ok=True)

    ok = [a for a in allocs if a.status == "ok"]
    memory, summary, control, entries = [], [], [], []
    req_cols: dict[str, list[Any]] = {f.name: [] for f in SCHEMAS["requests"]}
    for a in ok:
        for r in range(repeats):
            series = _memory_series(a, r, repeats, warmup_s, load_s, idle_s, interval)
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
                for t, ph, v in series
            ]
            for i in range(requests_per_alloc):
                sent = warmup_s + i * load_s / requests_per_alloc
                lat = (a.p50_ms if i % 100 < 98 else a.p99_ms) / 1000
                for key, val in (
                    ("allocator", a.name),
                    ("repeat", r),
                    ("endpoint", ("churn", "json", "churn", "xml")[i % 4]),
                    ("intended_s", sent),
                    ("sent_s", sent + 0.0002),
                    ("done_s", sent + lat),
                    ("status", 200),
                    ("error", None),
                    ("phase", "load"),
                ):
                    req_cols[key].append(val)
            j = _jitter(r, repeats)
            summary.append(
                {
                    "experiment": "service",
                    "allocator": a.name,
                    "repeat": r,
                    "peak_anon_bytes": int(a.peak_mb * 1e6 * j),
                    "settled_anon_bytes": int(a.settled_mb * 1e6 * j),
                    "reclaimed_anon_bytes": int(a.settled_mb * 0.98 * 1e6 * j),
                    "p50_ms": a.p50_ms * j,
                    "p95_ms": (a.p50_ms + a.p99_ms) / 2 * j,
                    "p99_ms": a.p99_ms * j,
                    "achieved_rps": 199.8,
                    "requests": requests_per_alloc,
                    "errors": 0,
                    "cpu_pressure_pct": 2.0,
                    "send_late_p99_ms": 0.8,
                    "disturbed": a.name in disturbed,
                    "disturbed_reason": "cpu pressure 41% above 20%"
                    if a.name in disturbed
                    else None,
                }
            )
        for r in range(3):
            j = _jitter(r, 3, 0.03)
            control.append(
                {
                    "allocator": a.name,
                    "repeat": r,
                    "threads": 4,
                    "operations": int(a.mops * 5e6 * j),
                    "seconds": 5.0,
                    "allocs_per_s": a.mops * 1e6 * j,
                    "peak_anon_bytes": int(a.control_settled_mb * 1.1e6),
                    "settled_anon_bytes": int(a.control_settled_mb * 1e6 * j),
                    "live_bytes": 164_000_000,
                    "checksum": "ok",
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
                    "disturbed": False,
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
        lib = None if a.name == "glibc" else f"/usr/lib/x86_64-linux-gnu/lib{a.name}.so.2"
        entries.append(
            {
                "name": a.name,
                "kind": "system",
                "base": None,
                "library": lib,
                "version": "5.3.0" if a.status == "ok" else None,
                "sha256": ("ab" * 32) if a.status == "ok" else None,
                "env": {},
                "status": a.status,
                "reason": a.reason,
                "evidence": {}
                if a.status != "ok"
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
                "phases": {},
                "loadgen": {"send_late_p99_ms": 0.8, "cpu_pct": 7.5},
            }
        )
    write_table(folder / "memory.arrow", "memory", to_table("memory", memory))
    n_requests = len(req_cols["allocator"])
    for values in req_cols.values():
        if not values:
            values.extend([None] * n_requests)
    write_table(
        folder / "requests.arrow",
        "requests",
        pa.Table.from_pydict(req_cols, schema=SCHEMAS["requests"]),
    )
    write_table(folder / "control.arrow", "control", to_table("control", control))
    write_table(folder / "summary.arrow", "summary", to_table("summary", summary))
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
            "cgroup_mode": "v1",
            "page_cache_dropped": True,
            "pinning": {"service_cpus": [1], "loadgen_cpus": [0]},
            "python_malloc": "pymalloc",
            "cpu_pressure": {"avg10_start": 0.5, "avg10_end": 3.2},
        },
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
) -> subprocess.CompletedProcess[str]:
    """A real `mkdocs build` in a fresh process, reading the given results folder."""
    env = {**os.environ, "ALLOCSTUDY_RESULTS": str(results), **(extra_env or {})}
    mkdocs = Path(sys.executable).with_name("mkdocs")
    return subprocess.run(
        [
            str(mkdocs),
            "build",
            "--strict",
            "-q",
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
    """Build the synthetic site once per test session (both test folders share it)."""
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
        )
        site = base / "site"
        proc = mkdocs_build(site, results)
        if proc.returncode != 0:
            raise RuntimeError(f"mkdocs build failed:\n{proc.stdout}\n{proc.stderr}")
        _BUILT["site"] = site
    return _BUILT["site"]
