"""Run the benchmarks one after another (never two at once: on 2 cores they measure each other).

`make bench` runs this. Each script runs in a fresh interpreter with the arguments below and
prints its own tables; a script that fails is named at the end and makes the exit code 1, and
the others still run. The staircase and idle-traffic benchmarks use the quick spec here (about
5 and 10 minutes); run `benchmarks/staircase.py` alone for the default spec's hour-long figures.

    .venv/bin/python benchmarks/run_all.py [--only NAME,NAME] [--list]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: (name, arguments): the order is cheapest first, so a quick look gives the instruments first.
BENCHMARKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("site_build", ()),
    ("sampler_overhead", ("--seconds", "15")),
    ("loadgen_fidelity", ("--target", "service")),
    ("service_latency", ("--seconds", "60")),
    ("control_throughput", ("--seconds", "10", "--spec", "specs/default.yaml")),
    ("staircase", ("--spec", "specs/quick.yaml")),
    ("idle_traffic", ("--spec", "specs/quick.yaml")),
    ("noise", ("--spec", "specs/quick.yaml")),
    ("cluster_overhead", ("--rounds", "3")),  # needs the cluster extra (make setup has it)
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names (see --list)")
    parser.add_argument("--list", action="store_true", help="name every benchmark and exit")
    args = parser.parse_args()
    names = [name for name, _ in BENCHMARKS]
    if args.list:
        print("\n".join(names))
        return 0
    wanted = names if not args.only else [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"run_all: unknown benchmarks {', '.join(unknown)} (known: {', '.join(names)})")
        return 2
    failed = []
    for name, extra in BENCHMARKS:
        if name not in wanted:
            continue
        print(f"\n## {name} ({' '.join(extra) or 'defaults'})", flush=True)
        began = time.monotonic()
        code = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *extra], cwd=ROOT
        ).returncode
        print(f"({name}: exit {code}, {time.monotonic() - began:.0f} s)", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nrun_all: failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
