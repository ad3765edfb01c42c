"""Build the articles of real runs with one source tree, and compare two such builds byte for byte.

A change that only moves the report's code (bench/report) must leave every built page as it
was. This script makes that checkable:

    scripts/article_diff.py build --tree /tmp/before-src --out /tmp/before RUN [RUN ...]
    scripts/article_diff.py build --tree . --out /tmp/after RUN [RUN ...]
    scripts/article_diff.py /tmp/before /tmp/after

`build` gives each run folder a results folder of its own (one study holding a copy of that
one run, at a fixed place under --runs, so paths on a page are the same in both builds), runs
`mkdocs build --strict` of the tree's mkdocs.yml with the tree's code first on PYTHONPATH, and
also writes the rendered Markdown of every generated page (and of a comparison page between the
first two runs) as the engine returns it, before MkDocs turns it into HTML. The diff then
compares every generated page (articles, runs page, comparison), in Markdown and in HTML;
`--all` adds the guide's HTML pages, which a change to docs/ changes. The search index and
assets are left out, being built from the same pages. Nothing on these pages is the build
time, so nothing is stripped; a difference is a difference.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

RUNS = Path("/tmp/article-diff-runs")

#: Rendered by `build` with the tree's own engine (run under that tree's PYTHONPATH).
_DUMP = """
import sys
from pathlib import Path
from bench.report import RUNS_PAGE, Site

results, template, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
compare = sys.argv[4:]
site = Site(results, compare=compare, reference=None)
text = template.read_text()
for src in [*site.article_pages(), RUNS_PAGE]:
    page = text if src in site.article_pages() else site.runs_page()
    dest = out / src
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(site.render(src, page))
if compare:
    (out / "compare.md").write_text(site.render("compare.md", site.compare_page() or ""))
"""


def _label(run: Path) -> str:
    """A name for a run's build: its parent folders too, as a reference run may share an id."""
    run = run.resolve()
    return f"{run.parent.parent.name}-{run.parent.name}-{run.name}"


def _place(run: Path, study: Path) -> None:
    """A copy of the run folder in a study folder (the engine skips symlinked runs)."""
    study.mkdir(parents=True, exist_ok=True)
    if not (study / run.name).exists():
        shutil.copytree(run, study / run.name)


def _results_for(run: Path, runs: Path) -> Path:
    """A results folder holding just this run, as its study's latest."""
    run = run.resolve()
    results = runs / _label(run)
    study = results / run.parent.name
    _place(run, study)
    (study / "latest").write_text(run.name + "\n")
    return results


def _build(tree: Path, out: Path, runs: list[Path], runs_root: Path) -> None:
    tree = tree.resolve()
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "ALLOCSTUDY_REFERENCE": "",
        "NO_MKDOCS_2_WARNING": "1",
    }
    mkdocs = Path(sys.executable).with_name("mkdocs")
    for run in runs:
        results = _results_for(run, runs_root)
        dest = out / _label(run)
        if dest.exists():
            shutil.rmtree(dest)
        env["ALLOCSTUDY_RESULTS"] = str(results)
        subprocess.run(
            [str(mkdocs), "build", "--strict", "-q", "-f", str(tree / "mkdocs.yml"), "-d",
             str(dest / "site")],
            cwd=tree, env=env, check=True,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-c", _DUMP, str(results), str(tree / "docs/_article.md"),
             str(dest / "md")],
            cwd=tree, env=env, check=True,
        )  # fmt: skip
    if len(runs) >= 2:  # a comparison page between the first two runs, in one results folder
        results = runs_root / "compare"
        for run in runs[:2]:
            _place(run.resolve(), results / run.resolve().parent.name)
        env["ALLOCSTUDY_RESULTS"] = str(results)
        names = [f"{r.resolve().parent.name}/{r.resolve().name}" for r in runs[:2]]
        dest = out / "compare"
        subprocess.run(
            [sys.executable, "-c", _DUMP, str(results), str(tree / "docs/_article.md"),
             str(dest / "md"), *names],
            cwd=tree, env=env, check=True,
        )  # fmt: skip


#: The generated pages of a built site (the guide's pages are the docs' own Markdown).
_GENERATED = ("site/index.html", "site/runs.html", "site/studies/")


def _pages(root: Path, every: bool) -> dict[str, Path]:
    """Relative path → file, for the pages the comparison covers."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file():
            continue
        html = rel.endswith(".html") and "/assets/" not in f"/{rel}"
        generated = any(f"/{g}" in f"/{rel}" for g in _GENERATED)
        if "/md/" in f"/{rel}" or (html and (every or generated)):
            out[rel] = path
    return out


def _diff(old: Path, new: Path, every: bool) -> int:
    a, b = _pages(old, every), _pages(new, every)
    problems = 0
    for rel in sorted(set(a) | set(b)):
        if rel not in b or rel not in a:
            print(f"only in {'old' if rel in a else 'new'}: {rel}")
            problems += 1
            continue
        x, y = a[rel].read_bytes(), b[rel].read_bytes()
        if x != y:
            problems += 1
            print(f"differs: {rel}")
            lines = difflib.unified_diff(
                x.decode(errors="replace").splitlines(),
                y.decode(errors="replace").splitlines(),
                lineterm="",
                n=1,
            )
            for i, line in enumerate(lines):
                if i >= 40:
                    print("   ...")
                    break
                print("   " + line[:200])
    print(f"{len(set(a) & set(b))} pages compared, {problems} differ")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "build":
        p = argparse.ArgumentParser(prog="article_diff.py build")
        p.add_argument("--tree", type=Path, required=True, help="source tree to build with")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--runs", type=Path, default=RUNS, help="where the results folders go")
        p.add_argument("run", type=Path, nargs="+", help="run folders (holding manifest.json)")
        args = p.parse_args(argv[1:])
        _build(args.tree, args.out, args.run, args.runs)
        return 0
    p = argparse.ArgumentParser(prog="article_diff.py", description=__doc__.split("\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--all", action="store_true", help="every HTML page, the guide's too")
    args = p.parse_args(argv)
    return _diff(args.old, args.new, args.all)


if __name__ == "__main__":
    sys.exit(main())
