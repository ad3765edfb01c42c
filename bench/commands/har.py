"""`allocstudy har FILE.har`: a browser's recording written as a request file to read and edit.

A spec may name a `.har` directly (it is converted each time the spec is read, identical
requests merged into weights); this command writes the conversion out as JSON lines instead,
so that it can be edited (a template field here, a `save` there) and kept beside the spec.
With `--keep-order` the recorded session stays one flow, in its order and with its pauses
(bench.traffic.har). The written file is checked as any request file is before it is kept.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import EXIT_OK, UsageError
from bench.traffic.har import convert_har, request_lines
from bench.traffic.issues import RequestFileError
from bench.traffic.requestfile import check_requests, shown

__all__ = ["har_command"]


def har_command(har: Path, out: Path | None, *, keep_order: bool, force: bool) -> int:
    """Convert `har` to the request file `out` (default: beside it, .jsonl); print the
    account and the file written."""
    target = out if out is not None else har.with_suffix(".jsonl")
    if target.exists() and not force:
        raise UsageError(f"{shown(target)} exists: pass --force to overwrite it, or --out")
    try:
        text = har.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"{shown(har)}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{shown(har)}: not UTF-8 text") from None
    requests, summary = convert_har(text, shown(har), keep_order=keep_order)
    _, _, issues = check_requests(requests, file=shown(har), base_dir=har.parent)
    if issues:
        raise RequestFileError(sorted(issues, key=lambda i: i.line))
    try:
        target.write_text(request_lines(requests, summary), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{shown(target)}: cannot write: {exc.strerror}") from None
    print(summary)
    print(target)
    return EXIT_OK
