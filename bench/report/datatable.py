"""HTML tables: the one builder every table of the site goes through.

Tables are emitted as HTML rather than Markdown so that numeric cells can carry their exact
value for sorting (data-sort) and so a table can sit inside a <details> next to its chart.
The sortable behaviour itself is a small script shipped in bench/assets (allocstudy.js).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Cell", "Column", "html_table"]


@dataclass(frozen=True)
class Cell:
    """One cell: the text shown and, for numbers, the exact value to sort by."""

    text: str
    sort: float | str | None = None
    html: bool = False  # text is already HTML (a link, a <code>)


@dataclass(frozen=True)
class Column:
    """A column heading; numeric columns are right-aligned and sorted by value."""

    title: str
    numeric: bool = False
    abbr: str | None = None  # a longer title for screen readers and tooltips


def _cell(c: Cell | str | None) -> Cell:
    if isinstance(c, Cell):
        return c
    return Cell("" if c is None else str(c))


def html_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Cell | str | None]],
    *,
    caption: str | None = None,
    sortable: bool = False,
    table_id: str | None = None,
) -> str:
    """A table as one block of HTML with no blank lines (Markdown passes it through whole).

    The table carries no class attribute: Material styles only `table:not([class])`, and our
    own rules select `table[data-as-table]`.
    """
    attrs = ["data-as-table"]
    if table_id:
        attrs.append(f'id="{html.escape(table_id)}"')
    if sortable:
        attrs.append("data-sortable")
    out = [f"<table {' '.join(attrs)}>"]
    if caption:
        out.append(f"<caption>{html.escape(caption)}</caption>")
    out.append("<thead><tr>")
    for col in columns:
        cls = ' class="as-num"' if col.numeric else ""
        title = f' title="{html.escape(col.abbr)}"' if col.abbr else ""
        out.append(f'<th scope="col"{cls}{title}>{html.escape(col.title)}</th>')
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for i, raw in enumerate(row):
            c = _cell(raw)
            col = columns[i] if i < len(columns) else Column("")
            attrs_c = []
            if col.numeric:
                attrs_c.append('class="as-num"')
            if c.sort is not None:
                attrs_c.append(f'data-sort="{html.escape(str(c.sort))}"')
            text = c.text if c.html else html.escape(c.text)
            tag = "th" if i == 0 else "td"
            scope = ' scope="row"' if i == 0 else ""
            attr_s = (" " + " ".join(attrs_c)) if attrs_c else ""
            out.append(f"<{tag}{scope}{attr_s}>{text}</{tag}>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)
