"""bench.report.sections: a new section is one module and its placeholders; one left off when
the run did not make its measurement, and named in the page's Try next list."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from material import material, text_of

from bench.report import Site, sections
from bench.report.errors import ReportError
from bench.report.section import Entries, Loaded, Section, keep_applying


@dataclass(frozen=True)
class Count:
    allocators: int


class CountSection(Section[Count]):
    """A throwaway section: the number of allocators, as a value and a sentence."""

    name = "count"
    try_next = ("counting twice", "specs/count.yaml")

    def __init__(self, applies: bool = True):
        self._applies = applies

    def applies(self, run: object) -> bool:
        return self._applies

    def compute(self, loaded: Loaded) -> Count:
        return Count(len(loaded.res.allocators))

    def values(self, data: Count) -> dict[str, str]:
        return {"count.allocators": str(data.allocators)}

    def sentences(self, data: Count) -> Entries:
        return {"count": lambda: f"This run counted {data.allocators} allocators."}


TEMPLATE = """# Count

<!-- section count -->
{{ say.count }} ({{ v.count.allocators }})
<!-- /section -->

## Try next

{{ table.try_next }}
"""


def test_a_registered_section_is_quoted_on_a_page(tmp_path: Path, monkeypatch):
    m = material(tmp_path)
    monkeypatch.setattr(sections, "SECTIONS", (*sections.SECTIONS, CountSection()))
    monkeypatch.setattr("bench.report.study.SECTIONS", sections.SECTIONS)
    monkeypatch.setattr("bench.report.site.SECTIONS", sections.SECTIONS)
    page = text_of(Site(m.view.study.path.parent).render("index.md", TEMPLATE))
    n = len(m.view.results.ranked().allocators)
    assert f"This run counted {n} allocators. ( {n} )" in " ".join(page.split())
    assert "counting twice" not in page  # the section applies: not in Try next


def test_a_section_that_does_not_apply_is_left_off_and_named_in_try_next(
    tmp_path: Path, monkeypatch
):
    m = material(tmp_path)
    monkeypatch.setattr(sections, "SECTIONS", (*sections.SECTIONS, CountSection(False)))
    monkeypatch.setattr("bench.report.study.SECTIONS", sections.SECTIONS)
    monkeypatch.setattr("bench.report.site.SECTIONS", sections.SECTIONS)
    page = Site(m.view.study.path.parent).render("index.md", TEMPLATE)
    assert "This run counted" not in page and "<!--" not in page
    assert "counting twice: <code>allocstudy run specs/count.yaml</code>" in page


def test_the_default_synthetic_run_leaves_off_limit_recycling_and_knobs(tmp_path: Path):
    m = material(tmp_path)
    text = m.table("try_next")
    for spec in ("specs/memory-limit.yaml", "specs/recycling.yaml", "specs/knobs.yaml"):
        assert spec in text


def test_a_region_naming_no_section_is_an_error():
    with pytest.raises(ReportError, match="names no section"):
        keep_applying("<!-- section nope -->\nx\n<!-- /section -->\n", {"leak": True}, "p.md")


def test_every_section_name_is_unique():
    names = [s.name for s in sections.SECTIONS]
    assert len(names) == len(set(names))
