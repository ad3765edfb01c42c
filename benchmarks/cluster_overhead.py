"""Cluster overhead: what running a study through Dask costs against a local run of it.

Runs the same tiny study (2 allocators; per allocator one service repeat of 1 + 3 + 2 s of
phases and two 1 s control repeats: 6 cells) alternately as a local run and with
`--cluster local` (a LocalCluster here: scheduler, TCP, a worker process advertising
`bench_host=1`, a fresh process per cell), `--rounds` times each, interleaved, and prints
medians side by side. From each run's manifest (the cells' wall-clock start and end) and the
wall time around the command:

- run wall time: the whole `allocstudy run`, start to exit;
- start-up: from the command's start to its first cell's start (the cluster's includes
  starting the LocalCluster; a real cluster is already up);
- gap between cells: from one cell's end to the next one's start on the host (the local run
  saves the tables; the cluster run also ships the result, merges it, and starts the next
  cell's process, which takes the host's lock and, for an allocator's first cell on the
  host, verifies it);
- cell span: one cell from start to end (the experiment itself, the same work both ways);
- overhead per cell: (cluster wall time - local wall time) / cells.

    .venv/bin/python benchmarks/cluster_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.measure.runlock import machine_lock  # noqa: E402
from bench.results.manifest import read_manifest  # noqa: E402

SPEC = """\
name: overhead
title: Cluster overhead, a tiny study
allocators: [glibc, jemalloc]
repeats: 1
service:
  workers: 2
  rate: 40
  warmup_s: 1
  load_s: 3
  idle_s: 2
  sample_interval_s: 0.25
  settle_window_s: 1
  churn: {live_buffers: 400, initial_buffers: 20, alloc_per_call: 16, long_lived_share: 0.3,
          short_lifetime_s: 0.5}
  payload: {max_items: 100}
control: {threads: 2, seconds: 1, idle_s: 1, repeats: 2}
"""


def one_run(spec: Path, out: Path, cluster: bool, env: dict[str, str]) -> dict[str, float]:
    """Run the study once; its timings (seconds)."""
    cmd = [sys.executable, "-m", "bench", "run", str(spec), "--out", str(out), "--wait"]
    if cluster:
        cmd += ["--cluster", "local"]
    began = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    ended = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    m = read_manifest(Path(proc.stdout.strip().splitlines()[-1]))
    cells = sorted(m["cells"], key=lambda c: c["started_unix"])
    gaps = [b["started_unix"] - a["finished_unix"] for a, b in zip(cells, cells[1:], strict=False)]
    return {
        "wall": ended - began,
        "startup": cells[0]["started_unix"] - began,
        "gap": statistics.median(gaps),
        "span": statistics.median(c["finished_unix"] - c["started_unix"] for c in cells),
        "teardown": ended - cells[-1]["finished_unix"],
        "cells": len(cells),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    with (
        tempfile.TemporaryDirectory(prefix="allocstudy-cluster-overhead-") as tmp,
        machine_lock(wait=True, on_wait=lambda text: print(text, file=sys.stderr, flush=True)),
    ):
        # The benchmark holds the machine's run lock throughout, so no other run measures
        # between (or during) its runs, and no wait for one lands in its timings; its own
        # runs take a private lock instead (they would wait for the benchmark otherwise).
        env = {**os.environ, "ALLOCSTUDY_LOCK": str(Path(tmp) / "runs.lock")}
        spec = Path(tmp) / "overhead.yaml"
        spec.write_text(SPEC)
        for r in range(args.rounds):
            for cluster in (False, True):  # interleaved: the machine drifts for both alike
                t = one_run(spec, Path(tmp) / "results", cluster, env)
                runs[cluster].append(t)
                kind = "cluster" if cluster else "local"
                print(f"round {r + 1} {kind}: {t['wall']:.1f} s", file=sys.stderr, flush=True)

    def med(cluster: bool, key: str) -> float:
        return statistics.median(t[key] for t in runs[cluster])

    cells = runs[False][0]["cells"]
    print(f"\n{cells:.0f} cells per run, {args.rounds} runs each way, medians\n")
    print("| measure | local run | `--cluster local` | difference |")
    print("|---|---:|---:|---:|")
    for key, label in (
        ("wall", "run wall time"),
        ("startup", "start-up to the first cell"),
        ("gap", "gap between cells"),
        ("span", "cell span (the experiment)"),
        ("teardown", "last cell to exit"),
    ):
        a, b = med(False, key), med(True, key)
        print(f"| {label} | {a:.2f} s | {b:.2f} s | {b - a:+.2f} s |")
    per_cell = (med(True, "wall") - med(False, "wall")) / cells
    print(f"\noverhead per cell: {per_cell:+.2f} s (cluster wall - local wall) / {cells:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
