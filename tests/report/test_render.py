"""Placeholder substitution: every name resolved, every problem reported with page and line."""

from __future__ import annotations

import pytest

from bench.report.errors import ReportError
from bench.report.render import Resolved, UnknownName, render

VALUES = {"leanest_settled.mb": "150 MB", "leanest_settled.name": "mimalloc-v3"}


def lookup(kind: str, name: str, study: str | None) -> Resolved:
    run = f"{study or 'quick'}/r1"
    if kind == "v":
        if name not in VALUES:
            raise UnknownName("value name", VALUES)
        return Resolved(VALUES[name], run)
    if kind == "chart":
        if name != "staircase":
            raise UnknownName("chart name", ["staircase"])
        return Resolved("<figure>x</figure>", run)
    raise UnknownName(f"{kind} name", [])


def test_values_are_substituted_and_marked():
    out = render("Lean: {{ v.leanest_settled.mb }}.", page="p.md", lookup=lookup)
    assert out.markdown == 'Lean: <span class="as-v" data-v="leanest_settled.mb">150 MB</span>.'
    assert out.runs == {"quick/r1"}


def test_unknown_value_names_page_line_and_nearest_names():
    with pytest.raises(ReportError) as exc:
        render("a\n\n{{ v.leanest_setled.mb }}", page="docs/_article.md", lookup=lookup)
    msg = str(exc.value)
    assert "docs/_article.md" in msg and "line 3" in msg
    assert "v.leanest_setled.mb" in msg and "v.leanest_settled.mb" in msg


def test_all_problems_of_a_page_are_reported_together():
    with pytest.raises(ReportError) as exc:
        render("{{ v.nope }} {{ v.other }}", page="p.md", lookup=lookup)
    assert "v.nope" in str(exc.value) and "v.other" in str(exc.value)


def test_malformed_placeholder_is_an_error_not_text():
    with pytest.raises(ReportError, match="malformed placeholder"):
        render("see {{ leanest }}", page="p.md", lookup=lookup)
    with pytest.raises(ReportError, match="malformed placeholder"):
        render("see {{ v.x", page="p.md", lookup=lookup)


def test_unknown_kind_is_an_error():
    with pytest.raises(ReportError, match="unknown kind 'value'"):
        render("{{ value.x }}", page="p.md", lookup=lookup)


def test_block_must_stand_alone_on_its_line():
    with pytest.raises(ReportError, match="alone on its line"):
        render("text {{ chart.staircase }}", page="p.md", lookup=lookup)
    out = render("a\n  {{ chart.staircase }}\nb", page="p.md", lookup=lookup)
    assert "\n<figure>x</figure>\n" in out.markdown


def test_literal_placeholders_for_documentation():
    out = render("`{{ lit.v.NAME }}` and {{ lit.v.x @quick }}", page="p.md", lookup=lookup)
    assert out.markdown == "`{{ v.NAME }}` and {{ v.x @quick }}"
    assert out.runs == frozenset()


def test_quoting_another_study_records_its_run():
    out = render(
        "{{ v.leanest_settled.mb }} {{ v.leanest_settled.mb @default }}", page="p.md", lookup=lookup
    )
    assert out.runs == {"quick/r1", "default/r1"}


def test_text_without_placeholders_is_unchanged():
    text = "# Title\n\nNo braces { here } at all.\n"
    assert render(text, page="p.md", lookup=lookup).markdown == text
