"""Service benchmark: latency, CPU time per request per endpoint, and the steady live set.

Starts the service the way a study does (4 workers by default, the allocator preloaded, the
service pinned away from the load generator) and drives an open-loop load of the spec's mix
at the spec's rate. Per endpoint it then drives a short single-endpoint load and divides the
service's CPU time (utime + stime of every worker, from /proc) by the requests served.
Finally /stats from every worker gives the live set against the spec's target.

    .venv/bin/python benchmarks/service_latency.py [--spec specs/default.yaml] [--seconds 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.allocators.registry import resolve_for_spec  # noqa: E402
from bench.experiments.harness import core_plan  # noqa: E402
from bench.load.config import LoadConfig  # noqa: E402
from bench.load.handle import start_loadgen, wait_loadgen  # noqa: E402
from bench.measure import runstats  # noqa: E402
from bench.results.tables import read_table  # noqa: E402
from bench.spec import load_spec  # noqa: E402
from service.launcher import free_port, start_service  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / TICK


def drive(
    base_url: str,
    spec,
    mix: dict[str, float],
    rate: float,
    seconds: float,
    harness: list[int] | None,
) -> list[dict]:
    out = Path(tempfile.mkdtemp(prefix="allocstudy-bench-")) / "requests.arrow"
    config = LoadConfig.model_validate(
        {
            **LoadConfig.from_service_spec(spec.service, base_url=base_url).model_dump(),
            "stages": [{"phase": "load", "rate": rate, "duration_s": seconds}],
            "mix": mix,
            "cpus": harness,
            "start_at": time.monotonic() + 1.5,
        }
    )
    wait_loadgen(start_loadgen(config, out))
    return read_table(out, "requests").to_pylist()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "default.yaml"))
    parser.add_argument("--allocator", default="glibc")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    spec = load_spec(args.spec)
    s = spec.service
    cores = core_plan(True)
    harness = sorted(cores.harness) if cores.harness else None
    alloc = resolve_for_spec(spec, args.allocator)
    svc = start_service(
        python=sys.executable,
        workers=s.workers,
        port=free_port(),
        env=alloc.preload_env(),
        service_config=s.model_dump(mode="json"),
        cpus=cores.measured,
        ready_timeout=60,
    )
    try:
        rows = drive(svc.base_url, spec, dict(s.mix), s.rate, args.seconds, harness)
        ok = [r for r in rows if r["status"] == 200]
        lat = [(r["done_s"] - r["intended_s"]) * 1000 for r in ok]
        raw = [(r["done_s"] - r["sent_s"]) * 1000 for r in ok]
        late = [(r["sent_s"] - r["intended_s"]) * 1000 for r in rows if r["sent_s"] is not None]
        print(
            f"\n{s.workers} workers, {args.allocator}, open loop {s.rate:g} req/s of mix "
            f"{dict(s.mix)} for {args.seconds:g} s; service on cores "
            f"{sorted(cores.measured) if cores.measured else 'all'}, load generator on "
            f"{harness or 'all'}\n"
        )
        print(
            "| requests | ok | p50 ms | p95 ms | p99 ms | p99 ms (from send) | send late p99 ms |"
        )
        print("|---|---|---|---|---|---|---|")
        print(
            f"| {len(rows)} | {len(ok)} | {runstats.percentile(lat, 50):.2f} | "
            f"{runstats.percentile(lat, 95):.2f} | {runstats.percentile(lat, 99):.2f} | "
            f"{runstats.percentile(raw, 99):.2f} | {runstats.percentile(late, 99):.2f} |"
        )
        print("\n| endpoint | CPU ms per request | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        per_rate = min(s.rate, 100.0)
        for endpoint in ("churn", "json", "xml"):
            pids = svc.worker_pids()
            before = cpu_s(pids)
            rows = drive(svc.base_url, spec, {endpoint: 1.0}, per_rate, 15.0, harness)
            used = cpu_s(pids) - before
            ok = [r for r in rows if r["status"] == 200]
            lat = [(r["done_s"] - r["intended_s"]) * 1000 for r in ok]
            print(
                f"| {endpoint} | {used / max(1, len(ok)) * 1000:.2f} | "
                f"{runstats.percentile(lat, 50):.2f} | {runstats.percentile(lat, 99):.2f} |"
            )
        per_worker = svc.stats_from_every_worker(timeout=30)
        target = s.churn.live_buffers * s.churn.mean_bytes
        print("\n| worker pid | live buffers | live MB | target MB | churn calls |")
        print("|---|---|---|---|---|")
        for pid, st in per_worker.items():
            print(
                f"| {pid} | {st.get('live_count')} | {st.get('live_bytes', 0) / 1e6:.1f} | "
                f"{target / 1e6:.1f} | {st.get('churn_calls')} |"
            )
    finally:
        svc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
