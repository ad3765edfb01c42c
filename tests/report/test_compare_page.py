"""The comparison page: built by a real `mkdocs build` from two real runs when mkdocs.yml's
`compare:` names them, its numbers those of the Arrow tables, its verdicts the CLI's."""

from __future__ import annotations

import html
import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest
from sitecheck import body_rows
from studyrun import run_cli
from synthetic_run import REPO, mkdocs_build, write_run

from bench.report import Site
from bench.report.pages.compare import COMPARE_PAGE
from bench.report.units import fmt_mb, fmt_mops, fmt_mops_cpu, fmt_ms, fmt_ratio
from bench.results.tables import read_table

pytestmark = pytest.mark.real_run

#: Each measure of the page's table: its experiment, its summary column, its formatter.
MEASURES: dict[str, tuple[str, str, Callable[[float | None], str]]] = {
    "service peak": ("service", "peak_anon_bytes", fmt_mb),
    "service settled": ("service", "settled_anon_bytes", fmt_mb),
    "service overhead at peak": ("service", "overhead_peak", fmt_ratio),
    "service overhead settled": ("service", "overhead_settled", fmt_ratio),
    "service p50 latency": ("service", "p50_ms", fmt_ms),
    "service p95 latency": ("service", "p95_ms", fmt_ms),
    "service p99 latency": ("service", "p99_ms", fmt_ms),
    "control throughput per s": ("control", "allocs_per_s", fmt_mops),
    "control throughput per CPU-second": ("control", "allocs_per_cpu_s", fmt_mops_cpu),
    "control settled": ("control", "settled_anon_bytes", fmt_mb),
}


def _config(tmp_path: Path, compare: list[str]) -> Path:
    """The repository's mkdocs.yml with a `compare:` list for the plugin."""
    config = tmp_path / "mkdocs.yml"
    plugin = {"results": "results", "template": "_article.md", "compare": compare}
    config.write_text(
        f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {REPO / 'docs'}\n"
        f"plugins:\n  - search\n  - offline\n  - allocstudy: {json.dumps(plugin)}\n"
    )
    return config


def _mean(run_dir: Path, allocator: str, measure: str) -> float | None:
    """A measure's mean over the clean repeats, read straight from the run's Arrow tables."""
    experiment, column, _ = MEASURES[measure]
    rows = [
        r
        for r in read_table(run_dir / "summary.arrow", "summary").to_pylist()
        if r["experiment"] == experiment and r["allocator"] == allocator
    ]
    clean = [
        r
        for r in rows
        if not r.get("disturbed") and not (experiment == "service" and r.get("flagged"))
    ] or rows
    xs = [r[column] for r in clean if r.get(column) is not None]
    if not xs and column == "allocs_per_cpu_s":  # older summaries: the control table has it
        kept = {r["repeat"] for r in clean}
        control = read_table(run_dir / "control.arrow", "control").to_pylist()
        xs = [
            r[column]
            for r in control
            if r["allocator"] == allocator and r["repeat"] in kept and r.get(column) is not None
        ]
    return statistics.fmean(xs) if xs else None


@pytest.mark.slow  # the second real run; the page: the synthetic tests here
def test_the_comparison_page_shows_both_runs_numbers_and_the_clis_verdicts(
    tiny_run: Path, tiny_run_b: Path, tmp_path: Path
):
    results = tiny_run.parent.parent
    config = _config(tmp_path, ["tiny/latest", str(tiny_run_b)])
    proc = mkdocs_build(tmp_path / "site", results, config=config)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "compare.html").read_text(encoding="utf-8")
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="compare.html"' in index  # the page is in the navigation

    rows = body_rows(page, "run-changes")
    assert {r["allocator"] for r in rows} == {"glibc"}  # jemalloc ran in run A only
    assert "jemalloc (only in run A; the other run: not in the run)" in html.unescape(page)
    assert [r["measure"] for r in rows] == list(MEASURES)
    for r in rows:
        a = _mean(tiny_run, "glibc", r["measure"])
        b = _mean(tiny_run_b, "glibc", r["measure"])
        fmt = MEASURES[r["measure"]][2]
        assert (r["run A"], r["run B"]) == (fmt(a), fmt(b)), r
        assert a is not None and b is not None
        sign = "" if b == a else "+" if b > a else "-"
        assert r["change"] == sign + fmt(abs(b - a)), r

    differences = {r["what"]: (r["run A"], r["run B"]) for r in body_rows(page, "run-differences")}
    assert differences["spec service.rate"] == ("40.0", "50.0")
    assert list(differences)[0] == "spec hash"

    # the page and `allocstudy compare` say the same of every measure
    cli = run_cli("compare", "--json", str(tiny_run), str(tiny_run_b))
    assert cli.returncode == 0, cli.stderr
    said = [c["text"] for c in json.loads(cli.stdout)["changes"]]
    for r, t in zip(rows, said, strict=True):
        assert (r["run A"], r["run B"], r["change"], r["change %"]) == (
            t["a"],
            t["b"],
            t["change"],
            t["change_pct"],
        )
        assert r["verdict"].split(" (")[0] == t["verdict"] and r["decided by"] == t["rule"]
    # two charts per section, one per run, with ids of their own
    for chart in ("peak-settled", "throughput"):
        assert f'id="chart-a-{chart}"' in page and f'id="chart-b-{chart}"' in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))


def test_without_compare_there_is_no_comparison_page(built_site: Path):
    assert not (built_site / "compare.html").exists()
    assert "compare.html" not in (built_site / "index.html").read_text(encoding="utf-8")


def test_a_compare_entry_that_names_no_run_fails_the_build_naming_it(tmp_path: Path, results: Path):
    config = _config(tmp_path, ["quick/latest", "quick/20990101T000000Z"])
    proc = mkdocs_build(tmp_path / "site", results, config=config)
    assert proc.returncode != 0
    assert "compare: 'quick/20990101T000000Z' names no run" in proc.stderr


def test_compare_needs_exactly_two_runs(tmp_path: Path, results: Path):
    proc = mkdocs_build(tmp_path / "site", results, config=_config(tmp_path, ["quick/latest"]))
    assert proc.returncode != 0
    assert "compare: needs two runs (run A, then run B), got 1" in proc.stderr


def test_manifest_text_on_the_page_is_shown_as_written_never_as_a_placeholder(tmp_path: Path):
    results = tmp_path / "results"
    write_run(results, run_id="a", latest=None)
    run_b = write_run(results, run_id="b", load_s=60.0)
    manifest = json.loads((run_b / "manifest.json").read_text())
    manifest["spec"]["description"] = "see {{ v.leanest_settled.mb }} <b>now</b>"
    (run_b / "manifest.json").write_text(json.dumps(manifest))
    site = Site(results, compare=["quick/a", "quick/latest"])
    markdown = site.compare_page()
    assert markdown is not None
    page = site.render(COMPARE_PAGE, markdown)
    assert "see &#123;&#123; v.leanest_settled.mb &#125;&#125; &lt;b&gt;now&lt;/b&gt;" in page
    assert "Run A is quick/a, run B is quick/b" in page
    assert Site(results).compare_page() is None
