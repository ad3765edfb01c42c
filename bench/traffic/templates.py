"""Seeded random fields in request paths and bodies, so a cache cannot answer every request.

A template is text with fields written `${...}`; everything else is sent as written:

- `${int:LO:HI}`     an integer from LO to HI, both included (LO <= HI)
- `${hex:N}`         N lowercase hexadecimal digits (1 to 1024)
- `${alnum:N}`       N letters and digits (1 to 1024)
- `${choice:a|b|c}`  one of the options, equally likely
- `${uuid}`          a random UUID (version 4 layout)
- `${feed:FILE:COL}` the column COL of a row drawn (seeded) from FILE, a CSV with a header
                     row or JSON lines of objects, relative to the request file; every feed
                     field of one request variant takes the same row of its file (an id and
                     the name that goes with it)
- `${env:NAME}`      the value of the environment variable NAME where the load is generated
                     (a token or a password: the request file, and so the manifest, holds only
                     its name; a variable that is not set is an error when the file is read)
- `${var:NAME}`      in a flow's later step only: the value an earlier step saved from its
                     answer (bench.traffic.flows); rendered here as a marker that the load
                     generator replaces when the step is sent
- `$${`              a literal `${` (the only way to write one)

Any other `${...}`, or a `${` never closed, is an error found when the request file is read,
never mid-run. (Not `{{...}}`: the site renders `{{ }}` as its own placeholders, so the guide
could not show that syntax, and JSON bodies are full of braces.) In a `json` body a string
that is exactly one `${int:...}` field becomes a JSON number; fields inside longer strings
render as text. Rendering draws from a `random.Random` the caller seeds, so the same seed
gives the same variants on every run and under every allocator.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import os
import random
import re
import string
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "json_strings",
    "MAX_FEED_ROWS",
    "Template",
    "TemplateError",
    "check_json",
    "compile_template",
    "escape",
    "feed_rows",
    "has_fields",
    "var_marker",
    "var_names",
    "json_fixed",
    "one_row_per_feed",
    "render_json",
    "resolve_feeds",
]

_FIELD = re.compile(r"\$\$\{|\$\{(?P<inside>[^{}$]*)\}")
_MAX_LEN = 1024
_ALNUM = string.ascii_letters + string.digits


#: What a `${var:NAME}` field renders to before the step is sent: NUL cannot be written in a
#: path (the request file forbids control characters there), so the marker never occurs by
#: chance; in a JSON body it is encoded as `\u0000`.
VAR_MARK = "\x00"
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def var_marker(name: str) -> str:
    """The text a `${var:NAME}` field renders to, replaced when its step is sent."""
    return f"{VAR_MARK}{name}{VAR_MARK}"


class TemplateError(ValueError):
    """A field the syntax does not know, or with bad arguments; the message quotes it."""


Piece = str | Callable[[random.Random], str]


def _count(text: str, raw: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= _MAX_LEN:
        raise TemplateError(f"${{{raw}}}: the length must be a whole number from 1 to {_MAX_LEN}")
    return int(text)


def _integer(text: str, raw: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise TemplateError(f"${{{raw}}}: {text!r} is not a whole number") from None


#: A feed file's rows at the most: it is read whole into every generator process.
MAX_FEED_ROWS = 1_000_000

#: The row each feed file gave the variant being rendered (`one_row_per_feed`); None: each
#: field draws its own.
_rows_chosen: dict[str, int] | None = None


def feed_rows(file: str) -> list[dict[str, Any]]:
    """The rows of a feed file, read once per process and version of the file: a CSV's rows
    by its header, or the objects of a JSON-lines file. TemplateError for a file that cannot
    serve as a feed."""
    try:
        st = os.stat(file)
    except OSError as exc:
        raise TemplateError(f"feed {file}: cannot read it ({exc.strerror or exc})") from None
    return _feed_rows(file, st.st_mtime_ns, st.st_size)


@functools.cache
def _feed_rows(file: str, _mtime_ns: int, _size: int) -> list[dict[str, Any]]:
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TemplateError(f"feed {file}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise TemplateError(f"feed {file}: not UTF-8 text") from None
    if path.suffix.lower() == ".csv":
        rows: list[dict[str, Any]] = [dict(r) for r in csv.DictReader(io.StringIO(text))]
    else:
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise TemplateError(f"feed {file}:{n}: not JSON ({exc})") from None
            if not isinstance(row, dict):
                raise TemplateError(f"feed {file}:{n}: each line must be a JSON object")
            rows.append(row)
    if not rows:
        raise TemplateError(f"feed {file}: holds no row")
    if len(rows) > MAX_FEED_ROWS:
        raise TemplateError(f"feed {file}: more than {MAX_FEED_ROWS:,} rows")
    return rows


def _feed_row(file: str, count: int, rng: random.Random) -> int:
    if _rows_chosen is None:
        return rng.randrange(count)
    if file not in _rows_chosen:
        _rows_chosen[file] = rng.randrange(count)
    return _rows_chosen[file]


@contextlib.contextmanager
def one_row_per_feed() -> Iterator[None]:
    """Inside it, every feed field of one file renders from the same row (one variant)."""
    global _rows_chosen
    before, _rows_chosen = _rows_chosen, {}
    try:
        yield
    finally:
        _rows_chosen = before


_FEED = re.compile(r"\$\{\s*feed:(?P<file>[^{}$]*):(?P<col>[^:{}$]*)\}")


def resolve_feeds(text: str, base_dir: Path) -> tuple[str, list[Path]]:
    """The text with every feed field's FILE made absolute (relative to `base_dir`, the
    request file's folder, as the generator renders elsewhere), and the files it names."""
    files: list[Path] = []

    def absolute(match: re.Match[str]) -> str:
        path = (base_dir / match.group("file").strip()).resolve()
        files.append(path)
        return f"${{feed:{path}:{match.group('col')}}}"

    return _FEED.sub(absolute, text), files


def var_names(text: str) -> list[str]:
    """The names of the `${var:NAME}` fields of a text, in order (an escaped `$${` is not one)."""
    out: list[str] = []
    for match in _FIELD.finditer(text):
        inside = (match.group("inside") or "").strip()
        if inside.startswith("var:"):
            out.append(inside[4:])
    return out


def _field(raw: str) -> Piece:
    """The renderer of one field's inside text (between the braces)."""
    kind, _, args = raw.partition(":")
    if kind == "uuid" and not args:
        return lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if kind == "int":
        bounds = args.split(":")
        if len(bounds) != 2:
            raise TemplateError(f"${{{raw}}}: write ${{int:LO:HI}}")
        lo, hi = (_integer(b, raw) for b in bounds)
        if lo > hi:
            raise TemplateError(f"${{{raw}}}: LO ({lo}) must not exceed HI ({hi})")
        return lambda rng: str(rng.randint(lo, hi))
    if kind == "hex":
        n = _count(args, raw)
        return lambda rng: f"{rng.getrandbits(4 * n):0{n}x}"
    if kind == "alnum":
        n = _count(args, raw)
        return lambda rng: "".join(rng.choices(_ALNUM, k=n))
    if kind == "feed":
        file, sep, column = args.rpartition(":")
        if not sep or not file or not column:
            raise TemplateError(f"${{{raw}}}: write ${{feed:FILE:COLUMN}}")
        rows = feed_rows(file)
        if column not in rows[0]:
            known = ", ".join(sorted(rows[0]))
            raise TemplateError(f"${{{raw}}}: {file} has no column {column!r} (it has {known})")
        return lambda rng: str(rows[_feed_row(file, len(rows), rng)][column])
    if kind == "env":
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args):
            raise TemplateError(f"${{{raw}}}: write ${{env:NAME}} with a variable's name")
        if args not in os.environ:
            raise TemplateError(
                f"${{{raw}}}: the environment variable {args} is not set (export it before "
                "the run: its value is sent, never recorded)"
            )
        return lambda _rng: os.environ.get(args, "")
    if kind == "var":
        if not _VAR_NAME.fullmatch(args):
            raise TemplateError(f"${{{raw}}}: write ${{var:NAME}} with a name a step saves")
        return var_marker(args)
    if kind == "choice":
        options = args.split("|")
        if not args or any(not o for o in options):
            raise TemplateError(f"${{{raw}}}: write ${{choice:a|b|c}} with no empty option")
        return lambda rng: rng.choice(options)
    raise TemplateError(
        f"unknown field ${{{raw}}} (known: int:LO:HI, hex:N, alnum:N, choice:a|b, uuid, "
        "env:NAME, feed:FILE:COL, var:NAME)"
    )


@dataclass(frozen=True)
class Template:
    """Compiled text: literal pieces and field renderers, in order."""

    pieces: tuple[Piece, ...]

    @property
    def fixed(self) -> bool:
        """True when there is no random field: every variant is the same text."""
        return all(isinstance(p, str) for p in self.pieces)

    def render(self, rng: random.Random) -> str:
        return "".join(p if isinstance(p, str) else p(rng) for p in self.pieces)


def compile_template(text: str) -> Template:
    """Check and compile a template; TemplateError names the first bad field."""
    pieces: list[Piece] = []
    at = 0
    for match in _FIELD.finditer(text):
        if match.start() > at:
            pieces.append(_literal(text[at : match.start()]))
        inside = match.group("inside")
        pieces.append("${" if inside is None else _field(inside.strip()))
        at = match.end()
    if at < len(text):
        pieces.append(_literal(text[at:]))
    return Template(tuple(pieces))


def _literal(text: str) -> str:
    """Text between fields; a `${` left in it was never closed."""
    if "${" in text:
        start = text.index("${")
        raise TemplateError(
            f"unclosed field {text[start : start + 20]!r}... (write $${{ for a literal ${{)"
        )
    return text


def escape(text: str) -> str:
    """Text sent exactly as it is: every `${` escaped, so no field is read in it."""
    return text.replace("${", "$${")


def has_fields(text: str) -> bool:
    """Whether a text holds any field or escape (so it needs rendering)."""
    return "${" in text


def json_strings(value: Any) -> Iterator[str]:
    """Every string of a JSON value, keys included, in document order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from json_strings(item)


def check_json(value: Any) -> None:
    """Compile every string of a JSON value (TemplateError for the first bad field)."""
    for text in json_strings(value):
        compile_template(text)


def json_fixed(value: Any) -> bool:
    """Whether a JSON value holds no random field (its text never changes)."""
    if isinstance(value, str):
        return compile_template(value).fixed
    if isinstance(value, list):
        return all(json_fixed(v) for v in value)
    if isinstance(value, dict):
        return all(json_fixed(k) and json_fixed(v) for k, v in value.items())
    return True


_WHOLE_INT = re.compile(r"^\$\{\s*int:[^{}$]*\}$")


def render_json(value: Any, rng: random.Random) -> Any:
    """A JSON value with every template string rendered; a lone int field becomes a number."""
    if isinstance(value, str):
        if not has_fields(value):
            return value
        rendered = compile_template(value).render(rng)
        return int(rendered) if _WHOLE_INT.match(value) else rendered
    if isinstance(value, list):
        return [render_json(v, rng) for v in value]
    if isinstance(value, dict):
        return {compile_template(k).render(rng): render_json(v, rng) for k, v in value.items()}
    return value
