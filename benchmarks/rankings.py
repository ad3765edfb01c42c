"""Rankings benchmark: do two runs tell the same story?

Reads two finished runs (by default the latest of the quick study and the latest of the
default study under results/) and prints, for settled and peak memory, both rankings side by
side as the article's engine ranks them (bench.report.aggregate and stats.rank, ties and
too-noisy values as the article words them), Kendall's tau between the two orders, and every
pair the two rankings place in different tiers in opposite ways: a sentence "A is leaner than
B" on one page and "B is leaner than A" on the other. The targets (issue 20): tau at least
0.8 on settled memory and no reversed pair. Run it on two quick runs too: two runs of the same
study on a quiet machine must not contradict each other.

    .venv/bin/python benchmarks/rankings.py [RUN_A [RUN_B]]

RUN is a run folder or a study folder (its `latest`), e.g. results/quick/latest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.report.aggregate import Results, aggregate  # noqa: E402
from bench.report.runfolders import load_run, run_at  # noqa: E402
from bench.report.stats import Sample, kendall_tau, rank, reversed_pairs  # noqa: E402

#: Kendall's tau the settled rankings of the quick and the full study must reach.
TARGET_TAU = 0.8


def _measure(res: Results, key: str) -> dict[str, Sample]:
    return {n: getattr(r, key) for n, r in res.service.items()}


def _order(items: dict[str, Sample]) -> list[str]:
    return sorted(items, key=lambda n: (items[n].center, n))


def _cell(name: str, items: dict[str, Sample], tiers: list[tuple[str, ...]]) -> str:
    s = items[name]
    place = next((i + 1 for i, t in enumerate(tiers) if name in t), None)
    rel = s.half_width_rel
    noise = f" ±{rel * 100:.1f}%" if rel is not None else ""
    where = (
        f"#{place}"
        if place is not None
        else ("falling" if s.falling_after_s is not None else "noisy")
    )
    return f"{name} {s.center / 1e6:,.0f} MB{noise} ({where})"


def compare(run_a: Path, run_b: Path) -> bool:
    """Print both rankings of each measure; True when every target is met."""
    runs = [load_run(run_at(p)) for p in (run_a, run_b)]
    res = [aggregate(r).ranked() for r in runs]
    for r in runs:
        m = r.manifest
        print(f"{m['spec_name']}/{m['run_id']} ({len(m.get('allocators') or [])} allocators)")
    ok = True
    for key in ("settled", "peak"):
        items = [_measure(x, key) for x in res]
        tiers = [rank(i) for i in items]
        orders = [_order(i) for i in items]
        tau = kendall_tau(orders[0], orders[1])
        flips = reversed_pairs(tiers[0], tiers[1])
        print(f"\n{key} memory, leanest first")
        for i in range(max(len(o) for o in orders)):
            left = _cell(orders[0][i], items[0], tiers[0]) if i < len(orders[0]) else ""
            right = _cell(orders[1][i], items[1], tiers[1]) if i < len(orders[1]) else ""
            print(f"  {left:<44}{right}")
        shown = "n/a" if tau is None else f"{tau:.2f}"
        print(f"  Kendall tau {shown}; pairs reversed beyond the noise: {len(flips)}")
        for x, y in flips:
            print(f"    {x} below {y} in the first run, above it in the second")
        if key == "settled" and (tau is None or tau < TARGET_TAU):
            ok = False
        if flips:
            ok = False
    print(
        f"\ntargets (settled tau >= {TARGET_TAU}, no reversed pair): {'met' if ok else 'not met'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_a", nargs="?", default=str(ROOT / "results/quick"))
    parser.add_argument("run_b", nargs="?", default=str(ROOT / "results/default"))
    args = parser.parse_args(argv)
    compare(Path(args.run_a), Path(args.run_b))
    return 0


if __name__ == "__main__":
    sys.exit(main())
