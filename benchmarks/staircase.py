"""Staircase benchmark: does the service's memory climb under load, and what does it cost?

Runs the service experiment of a spec (default: specs/default.yaml, every allocator that
resolves, no C++ control) and reads the run back, or reads a finished run given with --run.
Per allocator it prints anonymous memory at the end of each load minute (or of each tenth of
the load, for loads under ten minutes) beside the live payload the workers held then, the
climb (last step of load against the first), the overhead ratio at peak and settled
((anon - fresh service) / live payload gained), and the share of the peak given back by the
end of idle. Done when at least three allocators climb by 15 % or more and at least one
allocator's overhead ratio at peak exceeds 1.3 (issue 9's targets).

    .venv/bin/python benchmarks/staircase.py [--spec specs/default.yaml] [--run RUN_DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report import series  # noqa: E402
from bench.results.manifest import read_manifest  # noqa: E402
from bench.results.rundir import read_rows  # noqa: E402

CLIMB_TARGET = 0.15
OVERHEAD_TARGET = 1.3


def _steps(load_s: float) -> tuple[float, str]:
    """Step length and its label: minutes for loads of ten minutes or more, else tenths."""
    return (60.0, "min") if load_s >= 600 else (load_s / 10, "step")


def analyse(run_dir: Path) -> int:
    """Print the tables for one run and whether the targets are met (a verdict, exit 0)."""
    m = read_manifest(run_dir)
    rows = read_rows(run_dir)
    s = m["spec"]["service"]
    step, label = _steps(s["load_s"])
    print(f"run {m['run_id']} ({m['spec_name']}), load {s['load_s']:g} s at {s['rate']:g} req/s")
    print(f"idle traffic: {m['method']['idle_traffic']}; reclaim: {m['method']['reclaim']['how']}")
    climbers, overheads = [], []
    for a in m["allocators"]:
        name = a["name"]
        summary = [
            r for r in rows["summary"] if r["allocator"] == name and r["experiment"] == "service"
        ]
        if a["status"] != "ok" or not summary:
            print(f"\n{name}: {a['status']} ({a.get('reason') or 'no service data'})")
            continue
        phases = {p["phase"]: p for p in a["phases"]["service"] if p["repeat"] == 0}
        load0 = phases["load"]["start_s"]
        mem = [
            (r["t_s"], r["anon_bytes"])
            for r in rows["memory"]
            if r["allocator"] == name and r["experiment"] == "service" and r["repeat"] == 0
        ]
        ready = {
            w["pid"]: w["live_bytes"]
            for e in a["live_set"]
            if e["at"] == "ready" and e["repeat"] == 0
            for w in e["workers"]
        }
        requests = [r for r in rows["requests"] if r["allocator"] == name and r["repeat"] == 0]
        answers = [
            (r["done_s"], r["worker"], r["live_bytes"])
            for r in requests
            if r["live_bytes"] is not None and r["done_s"] is not None
        ]
        live = series.live_payload(answers, ready, None)
        n = round(s["load_s"] / step)
        anon_steps = [series.latest_at(mem, load0 + (i + 1) * step) for i in range(n)]
        live_steps = [series.latest_at(live, load0 + (i + 1) * step) for i in range(n)]
        first, last = anon_steps[0], anon_steps[-1]
        climb = (last - first) / first if first and last else None
        row = summary[0]
        print(f"\n{name} ({a.get('version') or '?'})")
        print(f"| {label} | " + " | ".join(str(i + 1) for i in range(n)) + " |")
        print("|---|" + "---|" * n)
        print("| anon MB | " + " | ".join(_mb(v) for v in anon_steps) + " |")
        print("| live payload MB | " + " | ".join(_mb(v) for v in live_steps) + " |")
        print(
            f"climb {_pct(climb)}; ready {_mb(row['ready_anon_bytes'])} MB; peak "
            f"{_mb(row['peak_anon_bytes'])} MB; settled {_mb(row['settled_anon_bytes'])} MB; "
            f"overhead peak {_ratio(row['overhead_peak'])}, settled "
            f"{_ratio(row['overhead_settled'])}; given back {_pct(row['given_back_share'])}; "
            f"p99 {row['p99_ms']:.1f} ms; errors {row['errors']}; "
            f"disturbed: {row['disturbed_reason'] or 'no'}; flags: {row['flags'] or 'none'}"
        )
        if climb is not None and climb >= CLIMB_TARGET:
            climbers.append(name)
        if row["overhead_peak"] is not None:
            overheads.append((row["overhead_peak"], name))
    top = max(overheads, default=None)
    print(
        f"\nclimbed >= {CLIMB_TARGET:.0%}: {len(climbers)} ({', '.join(climbers) or 'none'}; "
        f"target 3); highest overhead at peak: "
        f"{f'{top[0]:.2f} ({top[1]})' if top else 'none'} (target > {OVERHEAD_TARGET})"
    )
    met = len(climbers) >= 3 and top is not None and top[0] > OVERHEAD_TARGET
    print("targets met" if met else "targets NOT met")
    return 0  # a verdict, printed above; not a failure of the script


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value / 1e6:,.0f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.0f}%"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "default.yaml"))
    parser.add_argument("--run", type=Path, help="analyse this finished run instead of running")
    parser.add_argument("--out", default=str(ROOT / "results"))
    args = parser.parse_args()
    run_dir = args.run
    if run_dir is None:
        proc = subprocess.run(
            [sys.executable, "-m", "bench", "run", args.spec, "--out", args.out, "--no-control"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        if proc.returncode not in (0, 3):
            print(f"the run failed with exit {proc.returncode}", file=sys.stderr)
            return 2
        run_dir = Path(proc.stdout.strip().splitlines()[-1])
    return analyse(run_dir)


if __name__ == "__main__":
    sys.exit(main())
