"""Turning a Vega SVG into an inline figure that follows the page's theme and is accessible.

vl-convert draws text and axes in fixed colours. Charts are specified with a sentinel colour
(INK) wherever the page's text colour belongs; here it becomes `currentColor`, so the SVG
inherits Material's light or dark text colour and flips with the palette toggle. Vega's own
ARIA roles are removed and the root gets role="img" with a label: one accessible object per
chart, described by its caption and the data table beside it.
"""

from __future__ import annotations

import html
import re

import vl_convert as vlc

__all__ = ["INK", "figure_html", "render_svg", "theme_svg"]

#: The placeholder colour charts use for "the page's text colour".
INK = "#123456"

_INK_ATTR = re.compile(r'(fill|stroke)="' + re.escape(INK) + '"', re.IGNORECASE)
_ROOT = re.compile(r"<svg\b[^>]*>")
_INNER_ARIA = re.compile(r'\s(?:role|aria-[a-z]+)="[^"]*"')
_ID = re.compile(r'\bid="([^"]+)"')


def render_svg(spec: dict) -> str:
    """A Vega-Lite spec as SVG text (vl-convert: no browser, no network)."""
    return vlc.vegalite_to_svg(spec)


def _prefix_ids(svg: str, prefix: str) -> str:
    """Make Vega's ids (clip paths, gradients) unique on a page that holds several charts."""
    for old in sorted(set(_ID.findall(svg)), key=len, reverse=True):
        new = f"{prefix}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"')
        svg = svg.replace(f"url(#{old})", f"url(#{new})")
        svg = svg.replace(f'href="#{old}"', f'href="#{new}"')
    return svg


def theme_svg(svg: str, *, label: str, prefix: str) -> str:
    """Inline-ready SVG: themed text, ARIA on the root only, no namespace URLs, scalable."""
    svg = _INK_ATTR.sub(lambda m: f'{m.group(1)}="currentColor"', svg)
    svg = _INNER_ARIA.sub("", svg)
    svg = _prefix_ids(svg, prefix)
    root = _ROOT.search(svg)
    if root is None:
        raise ValueError("vl-convert returned something that is not an SVG")
    viewbox = re.search(r'viewBox="([^"]+)"', root.group(0))
    width = re.search(r'\bwidth="([\d.]+)"', root.group(0))
    new_root = (
        '<svg class="as-svg" role="img" focusable="false" '
        f'aria-label="{html.escape(label)}" '
        f'viewBox="{viewbox.group(1) if viewbox else "0 0 640 400"}" '
        f'style="max-width:{width.group(1) if width else "640"}px">'
    )
    return svg[: root.start()] + new_root + svg[root.end() :]


def figure_html(*, name: str, svg: str, caption: str, data_table: str, data_summary: str) -> str:
    """<figure> with the chart and caption, then the data behind it in a <details>.

    One block with no blank lines, so Markdown passes it through untouched.
    """
    parts = [
        f'<figure class="as-chart" id="chart-{html.escape(name)}">',
        svg,
        f"<figcaption>{caption}</figcaption>",
        "</figure>",
        f'<details class="as-data"><summary>{html.escape(data_summary)}</summary>',
        data_table,
        "</details>",
    ]
    return "\n".join(p.replace("\n\n", "\n") for p in parts)
