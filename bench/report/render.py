"""Placeholder substitution: Markdown pages that quote named values, sentences, charts, tables.

Syntax: ``{{ kind.name }}``, optionally ``{{ kind.name @study }}`` to quote another study.
Kinds: ``v`` (a named value, inline), ``say`` (a computed sentence, inline), ``chart`` and
``table`` (HTML blocks, alone on their line), ``lit`` (the literal text ``{{ name }}``, for
pages that document this syntax). Double braces are otherwise unused by Markdown and by
Material, so the syntax clashes with neither.

Every problem of a page is collected and raised at once: an unknown name (with the nearest
known names), a malformed placeholder, a block placeholder that shares its line. Nothing is
ever left blank or passed through as template text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bench.report.errors import ReportError

__all__ = [
    "BLOCK_KINDS",
    "INLINE_KINDS",
    "PLACEHOLDER",
    "Rendered",
    "Resolved",
    "UnknownName",
    "render",
]

PLACEHOLDER = re.compile(
    r"\{\{[ \t]*(?P<kind>[a-z]+)\.(?P<name>[A-Za-z0-9_.\-]+?)[ \t]*"
    r"(?:@[ \t]*(?P<study>[a-z0-9][a-z0-9-]*)[ \t]*)?\}\}"
)
INLINE_KINDS = ("v", "say", "lit")
BLOCK_KINDS = ("chart", "table")


class UnknownName(KeyError):
    """Raised by a lookup for a name it does not know; carries the names it does know."""

    def __init__(self, what: str, known: Iterable[str] = ()):
        super().__init__(what)
        self.what = what
        self.known = list(known)


@dataclass(frozen=True)
class Resolved:
    """A placeholder's replacement and the run it was computed from (None for none)."""

    text: str
    run: str | None = None


@dataclass(frozen=True)
class Rendered:
    """A rendered page: its Markdown and the runs its data came from."""

    markdown: str
    runs: frozenset[str]


Lookup = Callable[[str, str, "str | None"], Resolved]


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _alone_on_line(text: str, start: int, end: int) -> bool:
    before = text[text.rfind("\n", 0, start) + 1 : start]
    nl = text.find("\n", end)
    after = text[end : nl if nl >= 0 else len(text)]
    return not before.strip() and not after.strip()


def _wrap(kind: str, name: str, text: str) -> str:
    if kind == "v":
        return f'<span class="as-v" data-v="{name}">{text}</span>'
    if kind == "say":
        return f'<span class="as-say" data-say="{name}">{text}</span>'
    return f"\n{text}\n"  # a block: blank lines keep Markdown from touching it


def render(text: str, *, page: str, lookup: Lookup) -> Rendered:
    """Substitute every placeholder of a page or raise one ReportError listing all problems."""
    problems: list[str] = []
    runs: set[str] = set()
    out: list[str] = []
    pos = 0
    for opening in re.finditer(r"\{\{", text):
        if opening.start() < pos:
            continue
        m = PLACEHOLDER.match(text, opening.start())
        line = _line_of(text, opening.start())
        if m is None:
            snippet = text[opening.start() : opening.start() + 40].split("\n")[0]
            problems.append(
                f"line {line}: malformed placeholder {snippet!r} "
                "(expected {{ kind.name }}, kinds: v, say, chart, table, lit)"
            )
            pos = opening.end()
            continue
        kind, name, study = m.group("kind"), m.group("name"), m.group("study")
        out.append(text[pos : m.start()])
        pos = m.end()
        label = f"{kind}.{name}" + (f" @{study}" if study else "")
        if kind == "lit":
            out.append("{{ " + name + (f" @{study}" if study else "") + " }}")
            continue
        if kind not in INLINE_KINDS + BLOCK_KINDS:
            problems.append(
                f"line {line}: unknown kind {kind!r} in {{{{ {label} }}}} "
                "(kinds: v, say, chart, table, lit)"
            )
            continue
        if kind in BLOCK_KINDS and not _alone_on_line(text, m.start(), m.end()):
            problems.append(
                f"line {line}: {{{{ {label} }}}} is a block and must stand alone on its line"
            )
            continue
        try:
            got = lookup(kind, name, study)
        except UnknownName as exc:
            hint = difflib.get_close_matches(name, exc.known, n=3)
            near = f" (did you mean {', '.join(kind + '.' + h for h in hint)}?)" if hint else ""
            problems.append(f"line {line}: unknown {exc.what} {{{{ {label} }}}}{near}")
            continue
        if got.run:
            runs.add(got.run)
        out.append(_wrap(kind, name, got.text))
    out.append(text[pos:])
    if problems:
        raise ReportError(
            f"{page}: " + "; ".join(problems)
            if len(problems) == 1
            else f"{page}:\n  " + "\n  ".join(problems)
        )
    return Rendered("".join(out), frozenset(runs))
