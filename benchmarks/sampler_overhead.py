"""Sampler overhead: CPU % of one core at 1 Hz and 10 Hz, cgroup and procfs side by side.

Starts the real service (4 workers, the quick spec's churn) once, keeps it under a light
open-loop load so its memory moves, and samples it with each backend at each rate in turn
(interleaved, twice) for --seconds each. The sampler measures its own thread CPU time.

    .venv/bin/python benchmarks/sampler_overhead.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.allocators.registry import resolve  # noqa: E402
from bench.measure.groups import ProcfsGroup, cgroup_support, create_group  # noqa: E402
from bench.measure.sampler import Sampler  # noqa: E402
from bench.spec import load_spec  # noqa: E402
from service.launcher import free_port, start_service  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--spec", default=str(ROOT / "specs" / "quick.yaml"))
    args = parser.parse_args()
    spec = load_spec(args.spec)
    alloc = resolve("glibc")
    group = create_group("sampler-bench")
    svc = start_service(
        python=sys.executable,
        workers=spec.service.workers,
        port=free_port(),
        env=alloc.preload_env(),
        service_config=spec.service.model_dump(mode="json"),
        cgroup_procs=group.procs_file,
        ready_timeout=60,
    )
    procfs = ProcfsGroup()
    procfs.root_pid = svc.pid
    backends = {group.mode: group.anon_bytes, "procfs": procfs.anon_bytes}
    if group.mode == "none":
        backends = {"procfs": procfs.anon_bytes}
    results: dict[tuple[str, float], list[float]] = {}
    try:
        for _round in range(2):
            for name, read in backends.items():
                for hz in (1.0, 10.0):
                    s = Sampler(read=read, interval_s=1 / hz, origin=time.monotonic()).start()
                    time.sleep(args.seconds)
                    s.stop()
                    pct = s.cpu_s / args.seconds * 100
                    results.setdefault((name, hz), []).append(pct)
                    late = max((x.late_s for x in s.samples), default=0.0)
                    print(
                        f"  {name:7s} {hz:4.0f} Hz: {len(s.samples)} samples, "
                        f"{pct:.3f}% of a core, latest {s.samples[-1].anon_bytes / 1e6:.0f} MB,"
                        f" late max {late * 1000:.1f} ms",
                        file=sys.stderr,
                    )
    finally:
        svc.stop()
        group.close()
    print(
        f"\nmemory accounting here: {cgroup_support().mode}; {args.seconds:g} s per cell, "
        "2 interleaved rounds, median\n"
    )
    print("| backend | rate | sampler CPU, % of one core |")
    print("|---|---|---|")
    for (name, hz), pcts in results.items():
        print(f"| {name} | {hz:g} Hz | {statistics.median(pcts):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
