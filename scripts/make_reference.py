#!/usr/bin/env python3
"""Make the reference run a fresh clone's site shows, from a real run folder.

    python scripts/make_reference.py results/quick/latest

writes reference/<spec>/<run id>/ (the run's tables compacted by bench.results.compact,
its logs left out), replaces that study's earlier reference run, and rewrites the README's
headline table (between its `reference-headline` markers) from the new run; then run
scripts/readme_picture.py for the picture, and commit.
The article then opens on it until the reader makes a run of their own
(docs/guide/publishing.md). Exit 2, with one line, when the path names no complete run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's own bench, also from a plain python

from bench.report.aggregate import aggregate  # noqa: E402
from bench.report.errors import ReportError  # noqa: E402
from bench.report.headline_table import headline_markdown, headline_rows  # noqa: E402
from bench.report.reference import reference_label  # noqa: E402
from bench.report.runfolders import load_run, run_at  # noqa: E402
from bench.results.compact import compact_run  # noqa: E402
from bench.results.manifest import ManifestError  # noqa: E402
from bench.results.tables import TableError  # noqa: E402

README = ROOT / "README.md"
START, END = "<!-- reference-headline:start -->", "<!-- reference-headline:end -->"


def readme_block(run_dir: Path) -> str:
    """The README's headline: which run, then the same table `allocstudy show` prints."""
    run = load_run(run_at(run_dir))
    label = reference_label(run.manifest) or run.ref.run_id
    head = (
        f"Headline of {label} (spec `{run.ref.study}`, run {run.ref.run_id}; "
        "leanest settled first; control: the C++ control's allocations per second):"
    )
    return f"{START}\n{head}\n\n{headline_markdown(headline_rows(aggregate(run)))}\n{END}"


def update_readme(readme: Path, block: str) -> bool:
    """Replace the block between the markers; False when the README has no markers."""
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + block + after, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder, results/<spec>/latest, or a study folder")
    parser.add_argument(
        "--reference",
        default=str(ROOT / "reference"),
        help="where (default reference/; elsewhere, the README is left alone)",
    )
    args = parser.parse_args(argv)
    try:
        ref = run_at(Path(args.run))
        dest = compact_run(ref.path, Path(args.reference))
        block = readme_block(dest)
    except (ReportError, ManifestError, TableError, ValueError) as exc:
        print(f"make_reference: {exc}", file=sys.stderr)
        return 2
    if Path(args.reference).resolve() == (ROOT / "reference").resolve():
        if update_readme(README, block):
            print(f"make_reference: {README.name}: headline table rewritten", file=sys.stderr)
        else:
            print(f"make_reference: {README.name} has no {START} marker", file=sys.stderr)
    size = sum(p.stat().st_size for p in dest.iterdir())
    print(f"make_reference: {dest} ({size / 1e6:.2f} MB)", file=sys.stderr)
    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
