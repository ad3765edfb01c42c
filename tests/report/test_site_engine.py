"""The site plan without MkDocs: pages, banners, links, and the no-results message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_run import write_run

from bench.report import ReportError, Site

TEMPLATE = "# {{ v.study.title }}\n\n{{ say.headline }}\n\n{{ table.downloads }}\n"


def test_no_results_names_the_command(tmp_path: Path):
    with pytest.raises(ReportError, match=r"allocstudy run specs/quick\.yaml.*make study"):
        Site(tmp_path / "results")


def test_home_is_the_default_study_else_the_newest(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, spec_name="quick", run_id="2-q", started="2026-11-25T10:00:00+00:00")
    write_run(r, spec_name="other", run_id="1-o", started="2026-11-24T10:00:00+00:00")
    assert Site(r).article_pages() == {"index.md": "quick", "studies/other.md": "other"}
    write_run(r, spec_name="default", run_id="0-d", started="2026-11-20T10:00:00+00:00")
    assert Site(r).article_pages()["index.md"] == "default"


def test_download_links_are_relative_to_the_page(results: Path):
    site = Site(results)
    home = site.render("index.md", TEMPLATE)
    assert 'href="data/quick/20261125T180000Z-quick/summary.arrow"' in home
    write_run(results, spec_name="other", run_id="x", started="2000-01-01T00:00:00+00:00")
    site = Site(results)
    other = site.render("studies/other.md", TEMPLATE)
    assert 'href="../data/other/x/summary.arrow"' in other
    assert set(site.data_files()) >= {
        "data/other/x/memory.arrow",
        "data/quick/20261125T180000Z-quick/requests.arrow",
    }


def test_a_current_complete_run_has_no_banner(results: Path):
    assert "as-banner" not in Site(results).render("index.md", TEMPLATE)


def test_stale_spec_gets_a_banner_at_the_top(results: Path):
    spec = results.parent / "specs" / "quick.yaml"
    spec.write_text(spec.read_text().replace("repeats: 1", "repeats: 4"))
    out = Site(results).render("index.md", TEMPLATE)
    title_end = out.index("\n")
    assert out.index("Data older than its spec") > title_end
    assert out.index("Data older than its spec") < out.index('data-say="headline"')


def test_incomplete_run_gets_a_banner(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, status="incomplete", latest=None)
    out = Site(r).render("index.md", TEMPLATE)
    assert "Incomplete run" in out and "--resume" in out


def test_a_page_quoting_two_studies_says_it_mixes_runs(results: Path):
    write_run(results, spec_name="other", run_id="x", started="2000-01-01T00:00:00+00:00")
    out = Site(results).render("guide/x.md", "# X\n\n{{ v.run.id }} {{ v.run.id @other }}\n")
    assert "This page mixes runs" in out


def test_a_resumed_allocator_from_another_run_mixes_runs(results: Path):
    run = next((results / "quick").glob("2*"))
    m = json.loads((run / "manifest.json").read_text())
    m["allocators"][0]["run_id"] = "20261124T000000Z-quick"
    (run / "manifest.json").write_text(json.dumps(m))
    assert "This page mixes runs" in Site(results).render("index.md", TEMPLATE)


def test_disturbed_repeats_get_a_banner(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, disturbed=("glibc",))
    assert "Disturbed measurements" in Site(r).render("index.md", TEMPLATE)


def test_unknown_study_is_an_error(results: Path):
    with pytest.raises(ReportError, match="unknown study"):
        Site(results).render("guide/x.md", "{{ v.run.id @nosuch }}")


def test_runs_page_lists_every_run(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, run_id="20261125T100000Z-quick", started="2026-11-25T10:00:00+00:00")
    write_run(
        r,
        run_id="20261125T090000Z-quick",
        started="2026-11-25T09:00:00+00:00",
        status="incomplete",
        latest=None,
    )
    page = Site(r).runs_page()
    assert "20261125T100000Z-quick (shown)" in page and "20261125T090000Z-quick" in page
    assert "](index.md)" in page and "What an allocator costs" in page
