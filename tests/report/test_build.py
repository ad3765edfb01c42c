"""Real `mkdocs build` runs over synthetic results: numbers, rankings, errors, offline site."""

from __future__ import annotations

from pathlib import Path

import pytest
from sitecheck import check_built_site, external_refs, quoted, said
from synthetic_run import DEFAULT_ALLOCS, REPO, mkdocs_build, swapped, write_run


def test_built_site_quotes_the_tables(built_site: Path):
    check_built_site(built_site, built_site.parent / "results")


def test_home_is_the_default_study_and_other_studies_get_pages(built_site: Path):
    home = (built_site / "index.html").read_text()
    assert quoted(home)["run.id"] == "20261124T100000Z-default"
    quick = (built_site / "studies" / "quick.html").read_text()
    assert quoted(quick)["run.id"] == "20261125T180000Z-quick"
    runs = (built_site / "runs.html").read_text()
    assert "20261124T100000Z-default" in runs and "20261125T180000Z-quick" in runs


def test_the_template_is_not_published(built_site: Path):
    assert not list(built_site.rglob("_article*"))


def test_nothing_is_fetched_from_another_host(built_site: Path):
    assert external_refs(built_site) == []
    home = (built_site / "index.html").read_text()
    assert "assets/allocstudy/iframe-worker-shim.js" in home
    assert (built_site / "assets/allocstudy/allocstudy.js").is_file()
    assert (built_site / "search/search_index.js").is_file()  # offline search index


def test_full_table_is_sortable_and_failed_allocators_are_named(built_site: Path):
    home = (built_site / "index.html").read_text()
    assert '<table data-as-table id="full-data" data-sortable>' in home
    text = said(home)["not_measured"]
    assert "mimalloc-v2 (failed: preload ignored: library not found)" in text
    assert "mimalloc-bun (skipped: source not reachable offline)" in text


def test_page_weight_stays_small(built_site: Path):
    assert (built_site / "index.html").stat().st_size < 2_000_000


def test_swapped_data_swaps_the_rankings(tmp_path: Path):
    results = tmp_path / "results"
    write_run(results, allocs=swapped(DEFAULT_ALLOCS, "glibc", "mimalloc-v3"))
    proc = mkdocs_build(tmp_path / "site", results)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "site" / "index.html").read_text()
    s, v = said(page), quoted(page)
    assert "glibc is the leanest at 150 MB" in s["headline"]
    assert "mimalloc-v3 is the heaviest at 410 MB" in s["headline"]
    assert v["heaviest_peak_to_leanest_settled.ratio"] == "2.8×"
    assert s["settled_ranking"].startswith("From leanest to heaviest: glibc (150 MB)")
    check_built_site(tmp_path / "site", results)


@pytest.mark.parametrize(
    ("wrong", "meant"),
    [
        ("v.leanest_setled.mb", "v.leanest_settled.mb"),
        ("v.live.load_end.mbb", "v.live.load_end.mb"),  # a name added with the live payload
    ],
)
def test_unknown_value_name_fails_the_build_naming_page_and_name(
    tmp_path: Path, results: Path, wrong: str, meant: str
):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "_article.md").write_text(f"# {{{{ v.study.title }}}}\n\nLean: {{{{ {wrong} }}}}\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"INHERIT: {REPO / 'mkdocs.yml'}\ndocs_dir: {docs}\n")
    proc = mkdocs_build(tmp_path / "site", results, config=config)
    assert proc.returncode != 0
    err = proc.stderr + proc.stdout
    assert "index.md (generated from _article.md)" in err
    assert "line 3" in err and wrong in err and meant in err


def test_no_results_fails_naming_the_command(tmp_path: Path):
    no_reference = {"ALLOCSTUDY_REFERENCE": ""}  # the committed reference run would show
    proc = mkdocs_build(tmp_path / "site", tmp_path / "nothing", extra_env=no_reference)
    assert proc.returncode != 0
    assert "allocstudy run specs/quick.yaml" in proc.stderr and "make study" in proc.stderr
