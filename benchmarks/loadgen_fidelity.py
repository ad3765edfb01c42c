"""How faithfully does bench.load.generator keep its schedule, and up to what rate?

Two measurements side by side, for each event loop asked for (asyncio, uvloop):
1. fidelity: the study's rate (200 req/s) for `--seconds` against /health: achieved rate
   against the target, send lateness p50/p99 (sent_s - intended_s) and the generator's CPU
   time as a share of one core (getrusage of the generator process);
2. headroom: open-loop rates stepped up (200, 400, 800, 1000, 1500, 2000, ...) for
   `--step-seconds` each; the highest rate whose send lateness p99 stays within 2 ms.

The target is the real service (`--target service`, one worker with a tiny live set: /health
costs it next to nothing) or a trivial aiohttp server (`--target trivial`). The generator is
pinned to the last allowed CPU and the server to the others when there are two or more.

    .venv/bin/python benchmarks/loadgen_fidelity.py                 # the full run, ~4 min
    .venv/bin/python benchmarks/loadgen_fidelity.py --seconds 3 --step-seconds 2 --rates 200,1000

Prints a markdown table; `--json PATH` also writes every figure. Targets: achieved within 0.5%
of the target rate, lateness p99 <= 2 ms, CPU <= 15% of one core, max rate >= 1000 req/s.
This is a benchmark, not a test: run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.load.config import LoadConfig
from bench.load.handle import start_loadgen, wait_loadgen
from bench.measure.runstats import percentile
from bench.results.tables import read_table
from service.launcher import free_port

TARGET_ACHIEVED_REL = 0.005
TARGET_LATE_P99_MS = 2.0
TARGET_CPU_PCT = 15.0
TARGET_MAX_RATE = 1000.0
DEFAULT_RATES = (200, 400, 800, 1000, 1500, 2000, 3000, 4000)


@dataclass(frozen=True)
class Measure:
    """One generator run: the rate asked for and what came of it."""

    loop: str
    rate: float
    seconds: float
    requests: int
    ok: int
    achieved_rps: float  # OK responses / planned duration
    send_rps: float  # requests sent / (last send - first due + one interval)
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    cpu_pct: float


# -- targets ----------------------------------------------------------------------------------


def split_cpus(allowed: Sequence[int]) -> tuple[list[int], list[int]]:
    """(generator CPUs, server CPUs): the last CPU for the generator when there are two."""
    cpus = sorted(allowed)
    if len(cpus) < 2:
        return cpus, cpus
    return cpus[-1:], cpus[:-1]


@contextmanager
def service_target(cpus: list[int]) -> Iterator[str]:
    """The real service, one worker, a tiny live set; its base URL."""
    from service.launcher import start_service

    port = free_port()
    churn = {"live_buffers": 100, "min_bytes": 4096, "max_bytes": 8192, "alloc_per_call": 10}
    service = start_service(
        python=sys.executable,
        workers=1,
        port=port,
        env={},
        service_config={"churn": churn},
        cpus=set(cpus),
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        service.stop()


_TRIVIAL_SERVER = """
import asyncio, sys
from aiohttp import web
async def ok(request):
    return web.Response(text='{"status": "ok"}', content_type="application/json")
async def main():
    app = web.Application()
    app.router.add_get("/health", ok)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1]), backlog=4096).start()
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@contextmanager
def trivial_target(cpus: list[int]) -> Iterator[str]:
    """A bare aiohttp server answering /health, in its own pinned process; its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _TRIVIAL_SERVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the trivial server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


# -- measuring --------------------------------------------------------------------------------


def measure(base_url: str, loop: str, rate: float, seconds: float, cpus: list[int]) -> Measure:
    """Run one generator process at `rate` for `seconds` against /health."""
    config = LoadConfig.model_validate(
        {
            "base_url": base_url,
            "stages": [{"phase": "load", "rate": rate, "duration_s": seconds}],
            "mix": {"health": 1},
            "payload": {"kind": "minimal"},
            "timeout_s": 5,
            "cpus": cpus,
            "loop": loop,
        }
    )
    with tempfile.TemporaryDirectory(prefix="loadgen-fidelity-") as tmp:
        out = Path(tmp) / "requests.arrow"
        summary = wait_loadgen(start_loadgen(config, out, progress=False))
        rows = read_table(out, "requests").to_pylist()
    late = [(r["sent_s"] - r["intended_s"]) * 1000 for r in rows if r["sent_s"] is not None]
    sends = [r["sent_s"] for r in rows if r["sent_s"] is not None]
    span = (max(sends) - rows[0]["intended_s"] + 1 / rate) if sends else 0.0
    return Measure(
        loop=loop,
        rate=rate,
        seconds=seconds,
        requests=summary.requests,
        ok=summary.ok,
        achieved_rps=summary.stages[0].achieved_rps or 0.0,
        send_rps=len(sends) / span if span > 0 else 0.0,
        late_p50_ms=percentile(late, 50) or 0.0,
        late_p99_ms=percentile(late, 99) or 0.0,
        late_max_ms=max(late, default=0.0),
        cpu_pct=summary.cpu_pct,
    )


def headroom(
    base_url: str, loop: str, rates: Sequence[float], seconds: float, cpus: list[int]
) -> tuple[float | None, list[Measure]]:
    """Step the rate up; the highest rate whose lateness p99 holds (stop after two misses)."""
    best, steps, misses = None, [], 0
    for rate in rates:
        step = measure(base_url, loop, rate, seconds, cpus)
        steps.append(step)
        print(
            f"  {loop} {rate:g} req/s: lateness p99 {step.late_p99_ms:.2f} ms, "
            f"achieved {step.achieved_rps:.1f}, CPU {step.cpu_pct:.1f}%",
            file=sys.stderr,
        )
        if step.late_p99_ms <= TARGET_LATE_P99_MS and step.ok == step.requests:
            best, misses = rate, 0
        else:
            misses += 1
            if misses == 2:
                break
    return best, steps


# -- report -----------------------------------------------------------------------------------


def _mark(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _within(achieved: float, target: float) -> bool:
    return abs(achieved / target - 1) <= TARGET_ACHIEVED_REL


def table(results: dict[str, tuple[Measure, float | None]], fidelity_rate: float) -> str:
    """The markdown table: one column per event loop."""
    loops = list(results)
    lines = [
        "| measure | target | " + " | ".join(loops) + " |",
        "|---|---|" + "---|" * len(loops),
    ]

    def row(name: str, target: str, cells: list[str]) -> None:
        lines.append(f"| {name} | {target} | " + " | ".join(cells) + " |")

    fid = [results[loop][0] for loop in loops]
    row(
        f"achieved rate at {fidelity_rate:g} req/s",
        f"within {TARGET_ACHIEVED_REL:.1%}",
        [f"{m.achieved_rps:.2f} ({_mark(_within(m.achieved_rps, m.rate))})" for m in fid],
    )
    row("send rate (sends / span)", "", [f"{m.send_rps:.2f}" for m in fid])
    row("send lateness p50", "", [f"{m.late_p50_ms:.3f} ms" for m in fid])
    row(
        "send lateness p99",
        f"<= {TARGET_LATE_P99_MS:g} ms",
        [f"{m.late_p99_ms:.3f} ms ({_mark(m.late_p99_ms <= TARGET_LATE_P99_MS)})" for m in fid],
    )
    row("send lateness max", "", [f"{m.late_max_ms:.2f} ms" for m in fid])
    row(
        "generator CPU, % of one core",
        f"<= {TARGET_CPU_PCT:g}%",
        [f"{m.cpu_pct:.1f}% ({_mark(m.cpu_pct <= TARGET_CPU_PCT)})" for m in fid],
    )
    cells = []
    for loop in loops:
        best = results[loop][1]
        cells.append(
            "none" if best is None else f"{best:g} req/s ({_mark(best >= TARGET_MAX_RATE)})"
        )
    row("max rate with lateness p99 <= 2 ms", f">= {TARGET_MAX_RATE:g} req/s", cells)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="fidelity run length")
    parser.add_argument("--rate", type=float, default=200.0, help="fidelity rate, req/s")
    parser.add_argument("--step-seconds", type=float, default=10.0, help="length of each step")
    parser.add_argument(
        "--rates", default=",".join(map(str, DEFAULT_RATES)), help="headroom steps, req/s"
    )
    parser.add_argument("--loops", default="asyncio,uvloop", help="event loops to compare")
    parser.add_argument("--target", choices=("service", "trivial"), default="service")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args(argv)
    rates = [float(r) for r in args.rates.split(",") if r]
    loops = [loop for loop in args.loops.split(",") if loop]

    gen_cpus, server_cpus = split_cpus(sorted(os.sched_getaffinity(0)))
    target = service_target if args.target == "service" else trivial_target
    results: dict[str, tuple[Measure, float | None]] = {}
    steps: dict[str, list[Measure]] = {}
    started = time.monotonic()
    with target(server_cpus) as base_url:
        for loop in loops:
            print(f"{loop}: {args.rate:g} req/s for {args.seconds:g} s", file=sys.stderr)
            fidelity = measure(base_url, loop, args.rate, args.seconds, gen_cpus)
            best, steps[loop] = headroom(base_url, loop, rates, args.step_seconds, gen_cpus)
            results[loop] = (fidelity, best)
    print(
        f"\nTarget: {args.target} /health on CPUs {server_cpus}; generator on CPUs {gen_cpus}; "
        f"{time.monotonic() - started:.0f} s in all.\n"
    )
    print(table(results, args.rate))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "target": args.target,
                    "generator_cpus": gen_cpus,
                    "server_cpus": server_cpus,
                    "fidelity": {loop: asdict(r[0]) for loop, r in results.items()},
                    "max_rate": {loop: r[1] for loop, r in results.items()},
                    "steps": {loop: [asdict(m) for m in ms] for loop, ms in steps.items()},
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
