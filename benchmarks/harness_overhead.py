"""Harness overhead: wall time of each allocator's service part against its spec phases.

Reads a finished run (default: results/quick/latest, the run `make study` makes) and compares
the runner's measured wall time of the service experiment of every allocator (start-up,
proof of the allocator, warm-up, load, idle, reclaim, tear-down) with the sum of the spec's
phases (warm-up + load + idle). Target: at most 5 % over.

    .venv/bin/python benchmarks/harness_overhead.py [RUN_DIR]
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.results.manifest import read_manifest  # noqa: E402


def main() -> int:
    run_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "results" / "quick" / "latest"
    m = read_manifest(run_dir)
    s = m["spec"]["service"]
    planned = s["warmup_s"] + s["load_s"] + s["idle_s"]
    print(f"run {m['run_id']} ({m['spec_name']}): spec phases {planned:g} s per service repeat\n")
    print("| allocator | service wall s | over the phases |")
    print("|---|---|---|")
    overs = []
    for a in m["allocators"]:
        for wall in a.get("wall_s", {}).get("service", []):
            over = (wall - planned) / planned * 100
            overs.append(over)
            print(f"| {a['name']} | {wall:.1f} | {over:+.1f}% |")
    if overs:
        print(f"\nmedian overhead {statistics.median(overs):+.1f}% (target <= 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
