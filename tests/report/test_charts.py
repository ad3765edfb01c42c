"""Charts: themable, accessible, self-contained SVG inside a figure with its data table."""

from __future__ import annotations

import re
from pathlib import Path

from synthetic_run import write_run

from bench.report.aggregate import aggregate
from bench.report.charts import MAX_ROWS, charts
from bench.report.run import find_studies, load_run
from bench.report.svg import INK


def rendered(results: Path) -> dict[str, str]:
    (study,) = find_studies(results)
    run = load_run(study.current)
    return {k: f() for k, f in charts(run, aggregate(run)).items()}


def test_every_chart_is_a_labelled_themable_figure(results: Path):
    for name, html in rendered(results).items():
        assert html.startswith("<figure"), name
        assert "<figcaption>" in html and '<details class="as-data">' in html and "<table" in html
        (root,) = re.findall(r"<svg\b[^>]*>", html)
        assert 'role="img"' in root and 'aria-label="' in root
        assert "currentColor" in html, name
        assert INK.lower() not in html.lower(), name
        assert "http://" not in html and "https://" not in html, name
        assert "\n\n" not in html  # one HTML block for Markdown


def test_ids_are_unique_across_charts(results: Path):
    ids = [i for html in rendered(results).values() for i in re.findall(r'\bid="([^"]+)"', html)]
    assert len(ids) == len(set(ids))


def test_only_the_root_carries_aria(results: Path):
    html = rendered(results)["staircase"]
    assert html.count("role=") == 1


def test_legend_lists_leanest_settled_first(results: Path):
    html = rendered(results)["staircase"]
    legend = [n for n in ("mimalloc-v3", "jemalloc", "tcmalloc", "glibc")]
    positions = [html.index(f">{n}</text>") for n in legend]
    assert positions == sorted(positions)


def test_long_series_are_thinned_below_altairs_limit(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, interval=0.1, load_s=600, idle_s=120, requests_per_alloc=10)
    html = rendered(r)["staircase"]
    (samples,) = re.findall(r"<td[^>]*>(\d+)</td></tr></tbody>", html)[-1:]
    assert int(samples) > MAX_ROWS // 4  # the data table still counts every sample
    assert len(html) < 200_000


def test_no_data_gives_a_note_not_a_broken_chart(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    (run / "control.arrow").unlink()
    import json

    m = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps(m))
    from bench.results.tables import read_table, to_table, write_table

    rows = [
        x
        for x in read_table(run / "summary.arrow", "summary").to_pylist()
        if x["experiment"] == "service"
    ]
    write_table(run / "summary.arrow", "summary", to_table("summary", rows))
    out = rendered(r)
    assert out["throughput"].startswith('<p class="as-nochart"')
