"""Noise benchmark: how tight are the quick spec's intervals, and how far does an A/A pair drift?

Runs a spec (default: specs/quick.yaml, 3 repeats and an A/A pair, service and control), or
reads a finished run given with --run, and prints per allocator the settled memory (mean of the
clean repeats), the half-width of its 95% interval as a share of the mean, the repeats used and
left out, then the A/A pair's difference on each measure and the wall time of the run. The
issue's target: every settled interval within +/-3% on a quiet machine. The figures come from
the same engine the article uses (bench.report.aggregate), so page and benchmark agree.

    .venv/bin/python benchmarks/noise.py [--spec specs/quick.yaml] [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report.aggregate import aggregate  # noqa: E402
from bench.report.runfolders import load_run, run_at  # noqa: E402

#: The issue's target for the settled-memory interval, as a share of the value either way.
TARGET_HALF_WIDTH = 0.03


def analyse(run_dir: Path) -> int:
    """Print the tables for one run and whether the target is met (a verdict, exit 0)."""
    run = load_run(run_at(run_dir))
    res = aggregate(run)
    m = run.manifest
    started = datetime.fromisoformat(m["started"])
    finished = datetime.fromisoformat(m["finished"]) if m.get("finished") else None
    took = f"{(finished - started).total_seconds():.0f} s" if finished else "unfinished"
    print(f"run {m['run_id']} ({m['spec_name']}), {took}, {len(res.disturbed)} disturbed repeats")
    print(f"\n{'allocator':<16}{'settled MB':>12}{'±95%':>9}{'used':>6}{'left out':>10}")
    widths = []
    for name, r in res.service.items():
        rel = r.settled.half_width_rel
        widths.append(rel)
        half = f"{rel * 100:.2f}%" if rel is not None else "n/a"
        print(f"{name:<16}{r.settled.center / 1e6:>12.1f}{half:>9}{r.settled.n:>6}{r.excluded:>10}")
    if res.aa:
        print(f"\nA/A pair {res.aa.name} / {res.aa.again}: relative difference")
        for exp, diffs in (("service", res.aa.service), ("control", res.aa.control)):
            for key in ("peak", "settled", "p50", "p99", "allocs_per_s", "allocs_per_cpu_s"):
                if key in diffs:
                    print(f"  {exp:<8}{key:<18}{diffs[key] * 100:>7.2f}%")
    else:
        print("\nno A/A pair in this run (the spec's aa_pair)")
    known = [w for w in widths if w is not None]
    met = bool(known) and len(known) == len(widths) and max(known) <= TARGET_HALF_WIDTH
    worst = f"{max(known) * 100:.2f}%" if known else "n/a"
    print(
        f"\nsettled interval target ±{TARGET_HALF_WIDTH:.0%} for every allocator: "
        f"{'met' if met else 'not met'} (widest ±{worst})"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default="specs/quick.yaml")
    parser.add_argument("--run", type=Path, help="analyse this run folder instead of running")
    parser.add_argument("--out", default="/tmp/allocstudy-bench", help="results folder")
    args = parser.parse_args()
    if args.run is not None:
        return analyse(args.run)
    proc = subprocess.run(
        [sys.executable, "-m", "bench.cli", "run", args.spec, "--out", args.out],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.returncode not in (0, 3):
        print(f"noise: the run failed (exit {proc.returncode})")
        return 1
    return analyse(Path(proc.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    raise SystemExit(main())
