"""Python tracebacks read back from a worker's log, condensed for a one-line report.

A hosted app that fails to import, fails its startup or raises in a handler leaves a traceback
in its worker's log (uvicorn logs "Exception in 'lifespan' protocol" or "Exception in ASGI
application" with it). The runner reports such an app in one line per allocator, so the
traceback is condensed: the exception line first ("RuntimeError: no database"), then the frames
in the app's own code as `file:line in function: source` (the file relative to the current
directory when it is under it), innermost last. Frames of the interpreter, of installed
packages and of this harness are dropped when the app has frames of its own (they are the same
for every app); when it has none, the innermost frames are kept. Only the standard library is
imported.
"""

from __future__ import annotations

import os
import re
import sysconfig
from dataclasses import dataclass, field

__all__ = ["LoggedTraceback", "condensed", "first_traceback", "parse_tracebacks"]

_START = "Traceback (most recent call last):"
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_CHAINED = ("During handling of the above exception", "The above exception was the direct")
_HARNESS = ("/service/hosted.py", "/service/workerprocess.py", "/service/workerstart.py")


@dataclass
class LoggedTraceback:
    """One traceback of a log: its frames (file, line, function, source) and exception line."""

    frames: list[tuple[str, int, str, str]] = field(default_factory=list)
    exception: str = ""


def parse_tracebacks(text: str) -> list[LoggedTraceback]:
    """Every traceback in a log, in order (a chained exception's parts are separate ones)."""
    found: list[LoggedTraceback] = []
    current: LoggedTraceback | None = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith(_START):  # also "ERROR:    Traceback ..." (a logged message)
            current = LoggedTraceback()
            found.append(current)
            continue
        if current is None:
            continue
        if match := _FRAME.match(line):
            source = ""
            if i + 1 < len(lines) and not _FRAME.match(lines[i + 1]):
                nxt = lines[i + 1]
                if nxt.startswith("    ") and nxt.strip() and not set(nxt.strip()) <= set("^~ "):
                    source = nxt.strip()
            current.frames.append(
                (match["file"], int(match["line"]), (match["func"] or "").strip(), source)
            )
        elif line.startswith((" ", "\t")) or not line.strip():
            continue  # a frame's source line, its carets, or a blank line
        else:
            if not line.startswith(_CHAINED):
                current.exception = line.strip()
            current = None
    return [tb for tb in found if tb.exception]


def _installed_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")})


def _is_the_apps(path: str, installed: tuple[str, ...]) -> bool:
    if path.startswith("<") or path.endswith(_HARNESS):  # <frozen importlib._bootstrap>
        return False
    return not path.startswith(installed) and "/site-packages/" not in path


def _shown(path: str) -> str:
    """A path as a reader wants it in one line: relative when under the current directory."""
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def condensed(tb: LoggedTraceback, limit: int = 4) -> list[str]:
    """At most `limit` lines: the exception line, then the app's frames (see the module doc)."""
    if limit < 1:
        return []
    installed = _installed_prefixes()
    own = [frame for frame in tb.frames if _is_the_apps(frame[0], installed)]
    frames = (own or tb.frames)[-(limit - 1) :] if limit > 1 else []
    lines = [tb.exception]
    for path, line, func, source in frames:
        where = f"{_shown(path)}:{line}" + (f" in {func}" if func else "")  # a SyntaxError has none
        lines.append(where + (f": {source}" if source else ""))
    return lines


def first_traceback(text: str) -> LoggedTraceback | None:
    """The first traceback of a log whose exception is not only a chained one's context."""
    found = parse_tracebacks(text)
    return found[0] if found else None
