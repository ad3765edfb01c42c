#!/usr/bin/env python3
"""Make the reference run a fresh clone's site shows, from a real run folder.

    python scripts/make_reference.py results/quick/latest

writes reference/<spec>/<run id>/ (the run's tables compacted by bench.results.compact,
its logs left out) and replaces that study's earlier reference run; commit the folder.
The article then opens on it until the reader makes a run of their own
(docs/guide/publishing.md). Exit 2, with one line, when the path names no complete run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own bench, also from a plain python

from bench.report.errors import ReportError  # noqa: E402
from bench.report.run import run_at  # noqa: E402
from bench.results.compact import compact_run  # noqa: E402
from bench.results.manifest import ManifestError  # noqa: E402
from bench.results.tables import TableError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder, results/<spec>/latest, or a study folder")
    parser.add_argument(
        "--reference", default=str(ROOT / "reference"), help="where (default reference/)"
    )
    args = parser.parse_args(argv)
    try:
        ref = run_at(Path(args.run))
        dest = compact_run(ref.path, Path(args.reference))
    except (ReportError, ManifestError, TableError, ValueError) as exc:
        print(f"make_reference: {exc}", file=sys.stderr)
        return 2
    size = sum(p.stat().st_size for p in dest.iterdir())
    print(f"make_reference: {dest} ({size / 1e6:.2f} MB)", file=sys.stderr)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
