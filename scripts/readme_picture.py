#!/usr/bin/env python3
"""Make the README's picture of the article from the real built site.

    .venv/bin/python scripts/readme_picture.py            # writes docs/images/article.png

Builds the site with `mkdocs build` (from results/, or the committed reference run when
there is none, as a fresh clone would), serves it on 127.0.0.1 under a sub-path, opens the
article in Debian's headless chromium through Playwright (nothing is downloaded), and
screenshots the headline section: its chart of peak and settled memory and its table. Run
it again whenever the article changes (docs/_article.md, bench/report/) or the reference
run is replaced. Needs the dev extra (playwright) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from chromium import CHROMIUM, FLAGS  # noqa: E402


def build(site: Path) -> None:
    """A real `mkdocs build` of this checkout into `site`."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "-q", "-d", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise SystemExit(f"readme_picture: mkdocs build failed:\n{proc.stderr[-2000:]}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def shoot(site: Path, out: Path, *, width: int, height: int, section: str | None) -> None:
    """Serve `site` as /allocstudy/ and screenshot `height` pixels of the article from the
    heading `section` (an element id; None: the top of the page)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as served:
        (Path(served) / "allocstudy").symlink_to(site)
        handler = functools.partial(_Quiet, directory=served)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/allocstudy/index.html"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
                page = browser.new_page(
                    viewport={"width": width, "height": height},
                    color_scheme="light",
                    device_scale_factor=1,
                )
                page.goto(url, wait_until="networkidle")
                if section:  # its heading at the top, under the site's header bar
                    page.evaluate(
                        "id => { const e = document.getElementById(id);"
                        " if (!e) throw new Error('no section ' + id);"
                        " window.scrollTo(0, e.getBoundingClientRect().top + scrollY - 60); }",
                        section,
                    )
                    page.wait_for_timeout(800)  # the header bar's title swap animates
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=False)
                browser.close()
        finally:
            server.shutdown()
            server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "article.png"))
    parser.add_argument("--width", type=int, default=1200)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument(
        "--section",
        default="the-headline-memory-at-rest",
        help="the id of the heading to start from (default: the headline, its chart and "
        "table; '' for the top of the page)",
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print("readme_picture: needs /usr/bin/chromium (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build(site)
        shoot(
            site, Path(args.out), width=args.width, height=args.height, section=args.section or None
        )
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
