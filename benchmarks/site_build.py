"""How long `mkdocs build` takes, and how heavy the article is, for a default-sized study.

The data is synthetic but of the default study's size: six allocators, about 13 minutes of
1-second memory samples each and 120,000 request rows each (the tables are written with the
real table writer, tests/report/synthetic_run.py). Cold is the first build after the data was
written, into an empty site folder; warm is the median of the following builds.

    .venv/bin/python benchmarks/site_build.py [--warm 3] [--keep DIR]

Prints one JSON object. Target: the article page (HTML with its inline SVG) under 2 MB.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE_LIMIT = 2_000_000


def _synthetic():
    path = REPO / "tests" / "report" / "synthetic_run.py"
    spec = importlib.util.spec_from_file_location("allocstudy_synthetic_run", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_default_sized(results: Path) -> float:
    """Write the benchmark's run; return the seconds it took."""
    syn = _synthetic()
    names = ("glibc", "jemalloc", "tcmalloc", "mimalloc-v2", "mimalloc-v3", "mimalloc-bun")
    allocs = tuple(
        syn.Alloc(
            n,
            150 + 5 * i,
            300 + 25 * i,
            180 + 40 * i,
            1.0 + 0.05 * i,
            4 + 0.2 * i,
            10 + 6 * i,
            160 + 5 * i,
        )
        for i, n in enumerate(names)
    )
    t = time.perf_counter()
    syn.write_run(
        results,
        spec_name="default",
        run_id="20261125T180000Z-default",
        allocs=allocs,
        warmup_s=30,
        load_s=600,
        idle_s=120,
        interval=1.0,
        requests_per_alloc=120_000,
    )
    return time.perf_counter() - t


def build(site: Path, results: Path) -> float:
    env = {**os.environ, "ALLOCSTUDY_RESULTS": str(results), "NO_MKDOCS_2_WARNING": "1"}
    mkdocs = Path(sys.executable).with_name("mkdocs")
    t = time.perf_counter()
    subprocess.run(
        [str(mkdocs), "build", "-q", "-f", str(REPO / "mkdocs.yml"), "-d", str(site)],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="warm builds to take the median of")
    parser.add_argument("--keep", type=Path, help="keep the data and site in this folder")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="allocstudy-bench-"))
    try:
        results, site = base / "results", base / "site"
        write_s = write_default_sized(results)
        cold = build(site, results)
        warm = [build(site, results) for _ in range(args.warm)]
        page = site / "index.html"
        own = sum(p.stat().st_size for p in (site / "assets" / "allocstudy").glob("allocstudy*"))
        data = sum(p.stat().st_size for p in (site / "data").rglob("*.arrow"))
        report = {
            "data_write_s": round(write_s, 2),
            "build_cold_s": round(cold, 2),
            "build_warm_median_s": round(statistics.median(warm), 2) if warm else None,
            "build_warm_s": [round(w, 2) for w in warm],
            "article_html_bytes": page.stat().st_size,
            "article_own_css_js_bytes": own,
            "article_under_limit": page.stat().st_size < PAGE_LIMIT,
            "arrow_downloads_bytes": data,
        }
        print(json.dumps(report, indent=2))
        return 0 if report["article_under_limit"] else 1
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
