"""What an article section is: one topic's numbers, computed once, and what it draws from them.

The article is a list of sections (bench.report.sections lists them in page order). Each is
one module with one `Section` subclass: `compute` turns the loaded run into that section's
own frozen dataclass of numbers, once; `values`, `sentences`, `charts` and `tables` name what
a page can quote from those numbers as {{ v.<name> }}, {{ say.<name> }}, {{ chart.<name> }}
and {{ table.<name> }}; `applies` says whether the run made the section's measurement at
all (a page leaves out a section that does not apply). Sentences, charts and tables are
callables, so a page pays only for what it places.

`Loaded` is what every section starts from: one run, its aggregate, and the few things more
than one section derives from them (the ranked results, the live payload, the method as
recorded, the freshness of the spec), each computed on first use and kept.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from bench.report.aggregate import Results
from bench.report.errors import ReportError
from bench.report.live import LivePayload, live_payload
from bench.report.lockcheck import LockCheck, check_lock
from bench.report.recorded_method import Method, method_of
from bench.report.runfolders import Freshness, Run, check_freshness

__all__ = ["Entries", "Loaded", "Material", "Section", "keep_applying", "try_next"]

#: Name → a callable that renders the quoted text when a page first places it.
Entries = dict[str, Callable[[], str]]


class Loaded:
    """One run as every section reads it; each derived part computed once, when first asked.

    `full` is the whole run's aggregate (the A/A duplicate and the variants in it); `res` is
    what rankings compare (`Results.ranked`). `links` and `sizes` are the run's Arrow files
    as the site serves them, for the tables that link their downloads.
    """

    def __init__(
        self,
        run: Run,
        full: Results,
        *,
        roots: Sequence[Path] = (),
        live: LivePayload | None = None,
        fresh: Freshness | None = None,
        data_dir: str = "",
    ):
        self.run = run
        self.full = full
        self.roots = list(roots)
        self._live = live
        self._fresh = fresh
        self.data_dir = data_dir

    @cached_property
    def res(self) -> Results:
        return self.full.ranked()

    @cached_property
    def live(self) -> LivePayload:
        """The live payload, computed once for the chart, the sentences and the values."""
        if self._live is not None:
            return self._live
        res = self.res  # the A/A duplicate would count its allocator twice
        return live_payload(self.run, [n for n in res.names if n in res.service])

    @cached_property
    def method(self) -> Method:
        return method_of(self.run.manifest)

    @cached_property
    def freshness(self) -> Freshness:
        if self._fresh is not None:
            return self._fresh
        return check_freshness(self.run.manifest, self.roots)

    @cached_property
    def lock(self) -> LockCheck:
        """The run's Python package versions against the project's constraints.txt."""
        return check_lock(self.run.manifest, self.roots)

    @cached_property
    def aa_name(self) -> str | None:
        return self.full.aa.name if self.full.aa else None

    @cached_property
    def missing(self) -> list[tuple[str, str]]:
        """The allocators with no service data, as rankings name them."""
        return self.res.missing("service", brief=True)


D = TypeVar("D")


class Section(Generic[D]):
    """One article section: its numbers (`compute`) and what a page can quote from them.

    Subclasses set `name` (the section's id, also its slot in the template) and override
    `compute` and whichever of `values`, `sentences`, `charts`, `tables` they have.
    """

    name: ClassVar[str]
    #: The article heading the section sits under (None: the lead or a part of another's).
    title: ClassVar[str | None] = None
    #: For a section that does not always apply: what it measures and the spec that runs it,
    #: named in the page's "Try next" list when the run did not.
    try_next: ClassVar[tuple[str, str] | None] = None

    def applies(self, run: Run) -> bool:
        """Whether the run made this section's measurement; a page leaves it out if not."""
        return True

    def compute(self, loaded: Loaded) -> D:
        raise NotImplementedError

    def values(self, data: D) -> dict[str, str]:
        return {}

    def sentences(self, data: D) -> Entries:
        return {}

    def charts(self, data: D) -> Entries:
        return {}

    def tables(self, data: D, prefix: str) -> Entries:
        """Tables; `prefix` leads from the page to the site root (for links)."""
        return {}


@dataclass
class Material:
    """Every section's quotable material for one loaded run, each section computed once."""

    loaded: Loaded
    sections: Sequence[Section[Any]]
    _data: dict[str, Any] = field(default_factory=dict)

    def data(self, section: Section[Any]) -> Any:
        if section.name not in self._data:
            self._data[section.name] = section.compute(self.loaded)
        return self._data[section.name]

    @cached_property
    def values(self) -> dict[str, str]:
        return self._merge("value", lambda s: s.values(self.data(s)))

    @cached_property
    def sentences(self) -> Entries:
        return self._merge("sentence", lambda s: s.sentences(self.data(s)))

    def left_off(self) -> list[Section[Any]]:
        """The sections whose measurement this run did not make, in page order."""
        return [s for s in self.sections if not s.applies(self.loaded.run)]

    @cached_property
    def charts(self) -> Entries:
        return self._merge("chart", lambda s: s.charts(self.data(s)))

    def tables(self, prefix: str) -> Entries:
        out = self._merge("table", lambda s: s.tables(self.data(s), prefix))
        out["try_next"] = lambda: try_next(self.left_off())
        return out

    def _merge(self, what: str, part: Callable[[Section[Any]], dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for section in self.sections:
            for name, entry in part(section).items():
                if name in out:  # a programming error: two sections claim one placeholder
                    raise ValueError(f"{what} {name!r} is named by two sections")
                out[name] = entry
        return out


def try_next(left_off: Sequence[Section[Any]]) -> str:
    """The "Try next" list (HTML): each measurement this run did not make, and its spec."""
    items = [s.try_next for s in left_off if s.try_next is not None]
    if not items:
        return '<p class="as-try-next">This run made every measurement the article can show.</p>'
    rows = "".join(
        f"<li>{html.escape(what)}: <code>allocstudy run {html.escape(spec)}</code></li>"
        for what, spec in items
    )
    return (
        '<div class="as-try-next"><p>Measurements this run did not make, and the spec that '
        f"makes each:</p><ul>{rows}</ul></div>"
    )


#: A region of the template that belongs to one section: kept when the section applies.
_REGION = re.compile(
    r"^<!-- section (?P<name>[a-z_]+) -->\n(?P<body>.*?)^<!-- /section -->\n", re.M | re.S
)


def keep_applying(markdown: str, applies: Mapping[str, bool], page: str) -> str:
    """The template without the regions of sections the run did not make.

    A region is the lines between `<!-- section <name> -->` and `<!-- /section -->`, each
    marker alone on its line; the markers go in either case. A marker that names no section
    is an error, so a typo cannot silently keep or drop a part of the page.
    """

    def one(m: re.Match[str]) -> str:
        name = m.group("name")
        if name not in applies:
            raise ReportError(
                f"{page}: <!-- section {name} --> names no section (known: {', '.join(applies)})"
            )
        return m.group("body") if applies[name] else ""

    return _REGION.sub(one, markdown)
