"""Idle traffic: what a silent idle and an idle with health probes each let the allocators do.

The settled value is read after the idle phase, and what happens in it is a choice of method:
in a silent idle no request reaches a worker, so nothing expires, nothing is freed and no
allocator whose return policy runs on allocator activity gets a turn; with health probes (one
request a second, as a deployment's liveness checks send) every worker wakes now and then. This
script runs one spec's service experiment twice, side by side in one session, once with
`idle_rate: 0` and once with `idle_rate: 1` (or the rates given), and prints per allocator the
settled memory, the share of the peak given back by the end of idle, and the live payload at
the end of idle.

    .venv/bin/python benchmarks/idle_traffic.py [--spec specs/quick.yaml] [--rates 0,1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ruamel.yaml import YAML  # noqa: E402

from bench.results.manifest import read_manifest  # noqa: E402
from bench.results.rundir import read_rows  # noqa: E402


def _variant(spec: Path, rate: float, folder: Path) -> Path:
    """A copy of the spec with another idle rate and a name that says so."""
    yaml = YAML()
    data = yaml.load(spec.read_text())
    data["name"] = f"{data['name']}-idle{rate:g}".replace(".", "p")
    data["service"]["idle_rate"] = rate
    # one repeat, no A/A pair: the comparison reads repeat 0 of each allocator only
    data["repeats"] = 1
    data.pop("aa_pair", None)
    out = folder / f"{data['name']}.yaml"
    with out.open("w") as fh:
        yaml.dump(data, fh)
    return out


def _run(spec: Path, out: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "run", str(spec), "--out", str(out), "--no-control"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 3):
        raise SystemExit(f"{spec.name}: the run failed with exit {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _service_rows(run_dir: Path) -> dict[str, dict]:
    rows = read_rows(run_dir)["summary"]
    return {r["allocator"]: r for r in rows if r["experiment"] == "service" and r["repeat"] == 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "quick.yaml")
    parser.add_argument("--rates", default="0,1", help="idle rates to compare, comma-separated")
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    runs = {}
    with tempfile.TemporaryDirectory(prefix="allocstudy-idle-") as tmp:
        for rate in rates:
            runs[rate] = _run(_variant(args.spec, rate, Path(tmp)), args.out)
    results = {rate: _service_rows(run) for rate, run in runs.items()}
    names = [a["name"] for a in read_manifest(runs[rates[0]])["allocators"]]
    for rate, run in runs.items():
        print(f"idle_rate {rate:g}: {run}")
    head = " | ".join(
        f"settled MB ({r:g}/s) | given back ({r:g}/s) | live at idle end MB ({r:g}/s)"
        for r in rates
    )
    print(f"\n| allocator | {head} |")
    print("|---|" + "---|---|---|" * len(rates))
    for name in names:
        cells = []
        for rate in rates:
            row = results[rate].get(name)
            if row is None:
                cells += ["-", "-", "-"]
                continue
            cells += [
                f"{row['settled_anon_bytes'] / 1e6:,.0f}",
                f"{row['given_back_share'] * 100:.1f}%",
                f"{row['idle_end_live_bytes'] / 1e6:,.0f}",
            ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
