"""The built site under a sub-path (https://host/allocstudy/), as a static host serves it.

`mkdocs gh-deploy` and most static hosts put a project's site below the domain's root;
every link, stylesheet, script, chart and download must then resolve relative to the page,
never to `/`. Served here from a folder whose `allocstudy/` is the site.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def sub_url(site_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("served")
    (root / "allocstudy").symlink_to(site_dir)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/allocstudy/"
    finally:
        server.shutdown()
        server.server_close()


def test_the_site_works_under_a_sub_path(browser, sub_url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    failed: list[str] = []
    outside: list[str] = []
    page = context.new_page()
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if r.url.startswith("http") and "/allocstudy/" not in r.url
            else None
        ),
    )
    try:
        page.goto(sub_url + "index.html", wait_until="networkidle")
        charts = page.locator("figure.as-chart svg")
        assert charts.count() >= 1 and charts.first.is_visible()
        assert page.evaluate("getComputedStyle(document.body).fontFamily")  # the theme's CSS
        page.goto(sub_url + "runs.html", wait_until="networkidle")
        link = page.locator("article a[href$='index.html']").first
        link.click()
        page.wait_for_load_state("networkidle")
        assert page.url == sub_url + "index.html"
        hrefs = page.eval_on_selector_all("a[href$='.arrow']", "els => els.map(e => e.href)")
        assert hrefs and all("/allocstudy/data/" in h for h in hrefs)
        response = page.request.get(hrefs[0])
        assert response.ok, hrefs[0]
    finally:
        context.close()
    assert failed == [], failed
    assert outside == [], outside  # nothing asked of the domain's root
