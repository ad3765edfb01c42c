"""The built article in a real browser: offline, themable, searchable, accessible."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

LOCAL = ("file://", "data:", "blob:", "about:")


@pytest.fixture
def page(browser, http_url: str) -> Iterator[object]:
    """A fresh page whose every request to another host is refused and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    foreign: list[str] = []

    def guard(route) -> None:
        url = route.request.url
        if url.startswith(LOCAL) or url.startswith(http_url):
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    pg.foreign = foreign  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()


def _open(pg, url: str) -> None:
    pg.goto(url, wait_until="load")
    pg.wait_for_load_state("networkidle")


@pytest.mark.parametrize(
    "where", ["http", pytest.param("file", marks=pytest.mark.slow)]
)  # file: as http, 3 s
def test_article_loads_with_no_foreign_request_and_charts_show(page, http_url, site_dir, where):
    url = http_url if where == "http" else (site_dir / "index.html").as_uri()
    _open(page, url)
    charts = page.locator("figure.as-chart svg")
    assert charts.count() == 7  # staircase, peak-settled, leak, kept, latency, throughput, dumbbell
    for i in range(charts.count()):
        assert charts.nth(i).is_visible()
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 300 and box["height"] > 60
    assert page.foreign == []  # type: ignore[attr-defined]


def _text_fill(pg) -> str:
    return pg.eval_on_selector("figure.as-chart svg text", "e => getComputedStyle(e).fill")


def test_theme_toggle_recolours_the_charts(page, http_url):
    _open(page, http_url)
    before = _text_fill(page)
    page.locator("form[data-md-component=palette] label:visible").first.click()
    page.wait_for_function("() => document.body.getAttribute('data-md-color-scheme') === 'slate'")
    after = _text_fill(page)
    assert before != after


@pytest.mark.parametrize(
    "where", ["http", pytest.param("file", marks=pytest.mark.slow)]
)  # file: as http, 3 s
def test_search_finds_the_article(page, http_url, site_dir, where):
    url = http_url if where == "http" else (site_dir / "index.html").as_uri()
    _open(page, url)
    page.locator("input.md-search__input").click()
    page.keyboard.type("fragmentation")  # Material listens to key events, not to fill()
    page.wait_for_selector(".md-search-result__item", timeout=15_000)
    assert page.locator(".md-search-result__item").count() >= 1
    assert page.foreign == []  # type: ignore[attr-defined]


def test_full_data_table_sorts(page, http_url):
    _open(page, http_url)
    table = page.locator("#full-data")
    header = table.locator("th", has_text="settled MB").first
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    values = [
        float(v)
        for v in table.locator("tbody td:nth-child(5)").evaluate_all(
            "cells => cells.map(c => c.getAttribute('data-sort'))"
        )
        if v not in (None, "")
    ]
    assert values == sorted(values) and len(values) > 3
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"


@pytest.mark.parametrize(
    "path",
    [
        "index.html",  # the article; the other pages share its theme and tables
        pytest.param("studies/quick.html", marks=pytest.mark.slow),
        pytest.param("runs.html", marks=pytest.mark.slow),
    ],
)
def test_no_serious_accessibility_issue_in_the_article(page, http_url, path):
    from axe_playwright_python.sync_playwright import Axe

    _open(page, http_url + path)
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    results = Axe().run(page, context="article")
    bad = [
        f"{v['id']} ({v['impact']}): {v['help']} – {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert bad == []


@pytest.mark.parametrize(
    "path", ["index.html", pytest.param("studies/quick.html", marks=pytest.mark.slow)]
)
def test_tables_too_wide_for_the_window_are_keyboard_scrollable_regions(browser, http_url, path):
    # A phone-width window makes the article's tables overflow whatever the run's numbers are,
    # so this checks the overflow case every time (a wide window might hide it).
    context = browser.new_context(viewport={"width": 420, "height": 900})
    try:
        pg = context.new_page()
        _open(pg, http_url + path)
        pg.wait_for_timeout(200)  # the wraps are marked just after Material adds them
        wraps = pg.locator(".md-typeset__scrollwrap").evaluate_all(
            """ws => ws.map(w => ({over: w.scrollWidth > w.clientWidth + 1,
                                  tab: w.getAttribute('tabindex'),
                                  role: w.getAttribute('role'),
                                  name: w.getAttribute('aria-label')}))"""
        )
        overflowing = [w for w in wraps if w["over"]]
        assert overflowing, "no table overflowed at 420 px: the test checks nothing"
        for wrap in overflowing:
            assert wrap["tab"] == "0" and wrap["role"] == "region" and wrap["name"]
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(pg, context="article")
        bad = [
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == []
        pg.set_viewport_size({"width": 1600, "height": 900})
        pg.wait_for_timeout(300)
        still = pg.locator(".md-typeset__scrollwrap[role=region]").evaluate_all(
            "ws => ws.filter(w => w.scrollWidth <= w.clientWidth + 1).length"
        )
        assert still == 0  # a table that fits again is no longer a tab stop
    finally:
        context.close()


def test_print_layout_keeps_charts_whole(page, http_url):
    _open(page, http_url)
    page.emulate_media(media="print")
    rule = page.eval_on_selector("figure.as-chart", "e => getComputedStyle(e).breakInside")
    assert rule == "avoid"


def test_downloads_are_served(page, http_url, site_dir: Path):
    _open(page, http_url)
    hrefs = page.locator(".as-downloads a").evaluate_all("as => as.map(a => a.href)")
    assert sorted(h.rsplit("/", 1)[-1] for h in hrefs) == [
        "control.arrow",
        "memory.arrow",
        "requests.arrow",
        "retention.arrow",
        "summary.arrow",
    ]
    for href in hrefs:
        resp = page.request.get(href)
        assert resp.ok and resp.body()[:6] == b"ARROW1"


@pytest.mark.parametrize("width", [1280, 1920])
def test_the_staircase_fills_the_content_column(browser, http_url, width: int):
    # The study's main figure: as wide as the text column at every window width, not the
    # 460 px of plot it once had in an 830 px column.
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        pg = context.new_page()
        _open(pg, http_url)
        width_of = "s => document.querySelector(s).getBoundingClientRect().width"
        column = pg.evaluate(f"({width_of})('.md-content__inner')")
        svg = pg.evaluate(f"({width_of})('#chart-staircase svg')")
        assert abs(column - svg) <= 1, (column, svg)
    finally:
        context.close()


@pytest.mark.parametrize(
    "path", ["index.html", pytest.param("studies/quick.html", marks=pytest.mark.slow)]
)
def test_no_two_axis_labels_overlap_in_the_browsers_own_font(page, http_url, path):
    # Vega measures labels with its own font when the SVG is made; the reader's sans-serif
    # can be wider, so the check is of the boxes the browser actually drew.
    _open(page, http_url + path)
    groups = page.evaluate(
        """() => [...document.querySelectorAll('figure.as-chart svg g.role-axis-label')]
             .map(g => [...g.querySelectorAll('text')]
               .filter(t => t.getAttribute('opacity') !== '0' && t.textContent)
               .map(t => { const r = t.getBoundingClientRect();
                           return [r.left, r.right, r.top, r.bottom, t.textContent]; }))"""
    )
    assert groups
    for labels in groups:
        for i, a in enumerate(labels):
            for b in labels[i + 1 :]:
                apart = a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]
                assert apart, f"axis labels {a[4]!r} and {b[4]!r} overlap on {path}"
