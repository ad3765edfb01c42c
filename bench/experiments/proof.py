"""Proof that every process of a service repeat runs on the allocator under study.

A failed LD_PRELOAD is silent: the program runs on glibc and the study would measure glibc
under another name. So the runner proves the allocator from inside every worker (the library
that serves malloc, named by dladdr, in /stats) and from outside every process of the tree (the
library in its maps), and a variant's settings as each worker read them back. Replacements of
workers (recycled, or killed by a memory limit) get the same proof when they answer.
"""

from __future__ import annotations

import os
from typing import Any

from bench.allocators import knobs
from bench.allocators.registry import Allocator
from bench.allocators.verification import library_mapped
from bench.experiments.harness import ExperimentError

__all__ = [
    "REPLACEMENT",
    "SettingsMismatch",
    "prove_by_maps",
    "prove_replacements",
    "prove_workers",
]


class SettingsMismatch(ExperimentError):
    """A worker read back a variant's setting otherwise than asked; `knobs` holds every
    worker's judged read-back (bench.allocators.knobs.judge), for the manifest."""

    def __init__(self, message: str, knobs: list[list[dict[str, Any]]]) -> None:
        super().__init__(message)
        self.knobs = knobs


def prove_workers(
    per_worker: dict[int, dict[str, Any]],
    svc: Any,
    group: Any,
    alloc: Allocator,
    repeat: int,
    *,
    workers: int,
) -> list[dict[str, Any]]:
    """Proof from inside every process: /stats (dladdr) from each worker, maps for all; and
    in each worker, the read-back of the variant's settings (a worker's `knobs`)."""
    expected = alloc.expected_library()
    asked = knobs.asked_settings(alloc.env)
    rows = []
    pids = set(group.pids()) | set(per_worker) | {svc.pid}
    for pid in sorted(pids):
        stats_ = per_worker.get(pid, {})
        served = stats_.get("malloc_library")
        rows.append(
            {
                "repeat": repeat,
                "pid": pid,
                "role": "supervisor"
                if pid == svc.pid
                else ("worker" if pid in per_worker else "helper"),
                "malloc_library": served,
                "mapped": library_mapped(pid, expected),
            }
        )
        if asked and pid in per_worker:
            rows[-1]["knobs"] = knobs.judge(asked, stats_.get("knobs"))
    bad = [
        r
        for r in rows
        if (r["malloc_library"] and os.path.realpath(r["malloc_library"]) != expected)
        or r["mapped"] is False
    ]
    if bad:
        r = bad[0]
        raise ExperimentError(
            f"pid {r['pid']} ({r['role']}) is not on {alloc.name}: malloc "
            f"served by {r['malloc_library']}, {expected} mapped: {r['mapped']}"
        )
    if len(per_worker) < workers:
        raise ExperimentError(f"only {len(per_worker)} of {workers} workers answered")
    judged = [r["knobs"] for r in rows if "knobs" in r]
    for r in rows:
        if mismatch := knobs.failure_reason(r.get("knobs", [])):
            raise SettingsMismatch(f"pid {r['pid']} (worker): {mismatch}", judged)
    return rows


#: The role of every replacement worker's proof, whichever way it was found: recycled
#: (bench.experiments.restarts) or started after a death (the memory limit). Runs made before
#: the two were merged also hold "worker (replacement)" for a recycled one's; what reads a
#: run's roles (the report's provenance lists them as they are) reads both.
REPLACEMENT = "replacement worker"


def prove_replacements(
    answers: dict[int, dict[str, Any]],
    svc: Any,
    group: Any,
    alloc: Allocator,
    repeat: int,
    proven: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Proof for workers that answered /stats and were not there before (uvicorn's
    replacements of workers the memory limit killed): the same proof as the first workers'
    (dladdr from inside, maps from outside); ExperimentError when one is not on the allocator."""
    known = {r["pid"] for r in proven}
    new = {pid: st for pid, st in answers.items() if pid not in known}
    if not new:
        return []
    rows = [r for r in prove_workers(new, svc, group, alloc, repeat, workers=0) if r["pid"] in new]
    return [{**r, "role": REPLACEMENT} for r in rows]


def prove_by_maps(
    svc: Any, alloc: Allocator, repeat: int, proven: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A running worker still without proof at the end (its /stats never answered in time):
    the library in its maps, or ExperimentError when it is not there."""
    known = {r["pid"] for r in proven}
    expected = alloc.expected_library()
    rows = []
    for pid in svc.worker_pids():
        if pid in known:
            continue
        mapped = library_mapped(pid, expected)
        if mapped is False:
            raise ExperimentError(f"pid {pid} ({REPLACEMENT}) is not on {alloc.name}")
        rows.append(
            {
                "repeat": repeat,
                "pid": pid,
                "role": REPLACEMENT,
                "malloc_library": None,
                "mapped": mapped,
            }
        )
    return rows
