"""Flows: requests that run as one user's session, a later step using what an earlier answered.

A request file's lines that share a `flow` name, on consecutive lines, are the steps of one
flow, in file order:

    {"flow": "note", "name": "create", "method": "POST", "path": "/notes",
     "json": {"title": "t"}, "save": {"note_id": "$.id"}, "weight": 2}
    {"flow": "note", "name": "read", "method": "GET", "path": "/notes/${var:note_id}"}
    {"flow": "note", "name": "delete", "method": "DELETE", "path": "/notes/${var:note_id}"}

The flow's weight (on its first step) draws it into the open-loop schedule like any request;
its later steps follow each previous answer (after `pause_s`, a think time), so a service
that slows down delays them, as it would a real user. `save` takes values from a step's JSON
answer with a small JSONPath subset (`save_path`); `${var:NAME}` puts one in a later step's
path, headers or body. A step whose value is missing (the step that saves it failed, or its
answer had nothing at the path) is never sent with a guessed id: it is recorded failed, with
the reason.

This module checks flows (`check_flows`, every problem located like the rest of a request
file) and does the pure work of running them: reading a saved value (`extract`) and putting
it into a rendered step (`fill`). The generator (bench.load.generator) sends them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bench.traffic.templates import json_strings, var_marker, var_names

__all__ = [
    "MAX_PAUSE_S",
    "FlowStep",
    "SavePathError",
    "check_flows",
    "extract",
    "fill",
    "fill_headers",
    "missing_reason",
    "save_path",
    "step_name",
    "uses_of",
]

#: The longest think time a step may wait before it is sent.
MAX_PAUSE_S = 600.0
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR_FIELD = re.compile(r"\$\{\s*var:([^{}$]*)\}")  # shown as {NAME} in a default step name
_STEP = re.compile(
    r"""\.(?P<key>[A-Za-z_][A-Za-z0-9_-]*)   # .name
      | \[(?P<index>-?\d+)\]                  # [0], [-1]
      | \["(?P<quoted>[^"\\]*)"\]             # ["a key"]
    """,
    re.X,
)


class SavePathError(ValueError):
    """A `save` path outside the supported subset; the message says what is allowed."""


def save_path(text: str) -> tuple[str | int, ...]:
    """The keys and indexes of a save path: `$`, then `.key`, `[N]` (N may be negative: from
    the end) or `["any key"]`, as often as needed: `$.id`, `$.items[0].id`, `$["a b"][-1]`.

    Only these: no wildcards, filters or recursive descent, since one step saves one value.
    """
    if not text.startswith("$"):
        raise SavePathError(f"{text!r}: a path starts with $ (e.g. $.id or $.items[0].id)")
    out: list[str | int] = []
    at = 1
    while at < len(text):
        match = _STEP.match(text, at)
        if match is None:
            raise SavePathError(
                f'{text!r}: cannot read it from {text[at:]!r} (write .key, [N] or ["key"])'
            )
        if match.group("index") is not None:
            out.append(int(match.group("index")))
        else:
            out.append(match.group("key") or match.group("quoted") or "")
        at = match.end()
    if not out:
        raise SavePathError(f"{text!r}: $ alone is the whole answer: name a value in it")
    return tuple(out)


def _shown(path: Sequence[str | int]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def extract(document: Any, path: Sequence[str | int]) -> Any:
    """The value at `path` in a decoded JSON answer; KeyError with the reason when it is not
    there or is not one value (an object, a list or null)."""
    node = document
    for depth, part in enumerate(path):
        if isinstance(part, int):
            if not isinstance(node, list) or not -len(node) <= part < len(node):
                raise KeyError(f"the answer has no {_shown(path[: depth + 1])}")
        elif not isinstance(node, dict) or part not in node:
            raise KeyError(f"the answer has no {_shown(path[: depth + 1])}")
        node = node[part]
    if node is None or isinstance(node, dict | list):
        kind = "null" if node is None else type(node).__name__
        raise KeyError(f"{_shown(path)} in the answer is {kind}, not one value")
    return node


def missing_reason(var: str, why: str | None) -> str:
    """The error of a step not sent because `var` is missing (`why`: what went wrong)."""
    return f"flow step not sent: ${{var:{var}}} missing ({why or 'never saved'})"


def _text(value: Any) -> str:
    """A saved value as text: strings as they are, numbers and booleans as JSON writes them."""
    return value if isinstance(value, str) else json.dumps(value)


def fill(
    path: str, body: bytes | None, body_kind: str, saved: Mapping[str, Any]
) -> tuple[str, bytes | None]:
    """A rendered step with its `${var:...}` markers replaced by the saved values: URL-quoted
    in the path; in a JSON body a string that is one var becomes the saved JSON value itself
    (a number stays a number), a var inside longer text is JSON-escaped; a text body takes
    the text as it is, and so does a form's text field (a multipart part carries no length)."""
    for name, value in saved.items():
        mark = var_marker(name)
        if mark in path:
            path = path.replace(mark, quote(_text(value), safe=""))
        if body is None or body_kind not in ("text", "json", "form"):
            continue
        if body_kind == "json":
            encoded = json.dumps(mark).encode()  # the marker as json.dumps wrote it
            body = body.replace(encoded, json.dumps(value).encode())
            body = body.replace(encoded[1:-1], json.dumps(_text(value)).encode()[1:-1])
        else:
            body = body.replace(mark.encode(), _text(value).encode())
    return path, body


def fill_headers(headers: Mapping[str, str] | None, saved: Mapping[str, Any]) -> dict[str, str]:
    """A step's headers with their `${var:...}` markers replaced by the saved values, as text
    (a token saved by a login step, sent as `Authorization: Bearer ${var:token}`)."""
    out = dict(headers or {})
    for key, text in out.items():
        for name, value in saved.items():
            text = text.replace(var_marker(name), _text(value))
        out[key] = text
    return out


@dataclass(frozen=True)
class FlowStep:
    """What checking needs of one step: where it is and what it saves and uses."""

    index: int  # in the file's order (HAR entries may share a line)
    line: int
    flow: str
    raw: Mapping[str, Any]
    checked: Mapping[str, Any]
    saves: tuple[str, ...]
    uses: tuple[str, ...]


def uses_of(request: Mapping[str, Any]) -> list[str]:
    """The var names a checked request's path, headers and body use (in order, repeats
    kept)."""
    texts = [request.get("path") or ""]
    texts.extend((request.get("headers") or {}).values())
    if request.get("body_kind") == "text":
        texts.append(request.get("body") or "")
    if request.get("body_kind") == "json":
        texts.extend(json_strings(request.get("json_value")))
    for part in request.get("form") or []:
        texts.append(part.get("text", ""))
    return [name for text in texts for name in var_names(text)]


def step_name(flow: str, step: int, steps: int, own: str) -> str:
    """A step's request name, and so the `endpoint` of its rows: `note 2/3: read` says which
    flow and which step a row is."""
    return f"{flow} {step}/{steps}: {own}"


def check_flows(
    order: Sequence[tuple[int, Mapping[str, Any], Mapping[str, Any]]],
    bad: Callable[[int, str, str], None],
) -> dict[int, dict[str, Any]]:
    """Check the flows of a file's requests, (line, raw object, checked request) in file
    order, reporting through `bad(line, field, message)`; what each step's checked request
    gains, by its index in `order`: its flow, step, name, saves and weight (the first step's).

    Reported: a flow's steps not on consecutive lines, a weight or pause on a step it does
    not belong to, a `save` or `${var:...}` outside a flow, a var that no earlier step of the
    flow saves (unknown, or saved only at or after the step that uses it), a bad save path.
    """
    steps: dict[str, list[FlowStep]] = {}
    last_flow: str | None = None
    for index, (line, raw, checked) in enumerate(order):
        flow = raw.get("flow")
        uses = tuple(uses_of(checked))
        if flow is None:
            last_flow = None
            if "save" in raw:
                bad(line, "save", 'only a flow\'s step saves values: give it a "flow"')
            if "pause_s" in raw:
                bad(line, "pause_s", 'only a flow\'s later step pauses: give it a "flow"')
            if uses:
                bad(
                    line,
                    _where(raw, uses[0]),
                    f"${{var:{uses[0]}}} is a flow's value: give the request a flow",
                )
            continue
        if not isinstance(flow, str) or not flow.strip() or len(flow) > 100:
            bad(line, "flow", "must be a non-empty name of at most 100 characters")
            last_flow = None
            continue
        if flow in steps and last_flow != flow:
            first = steps[flow][0].line
            bad(line, "flow", f"{flow!r} began on line {first}: keep its steps on adjacent lines")
        last_flow = flow
        saves = _check_save(line, raw.get("save", {}), bad)
        steps.setdefault(flow, []).append(FlowStep(index, line, flow, raw, checked, saves, uses))
    out: dict[int, dict[str, Any]] = {}
    for flow, members in steps.items():
        out.update(_check_one_flow(flow, members, bad))
    return out


def _braced(match: re.Match[str]) -> str:
    return "{" + match.group(1).strip() + "}"


def _where(raw: Mapping[str, Any], var: str) -> str:
    """The key of a raw request that holds `${var:NAME}`: its path, a header, else its body's
    key."""
    if var in var_names(str(raw.get("path", ""))):
        return "path"
    headers = raw.get("headers")
    for name, value in headers.items() if isinstance(headers, dict) else []:
        if var in var_names(str(value)):
            return f"headers.{name}"
    return next((k for k in ("json", "body", "body_file", "form") if k in raw), "path")


def _check_save(line: int, save: Any, bad: Callable[[int, str, str], None]) -> tuple[str, ...]:
    if not isinstance(save, dict):
        bad(line, "save", 'must be an object of names to paths, e.g. {"note_id": "$.id"}')
        return ()
    for name, path in save.items():
        if not _NAME.fullmatch(name):
            bad(line, f"save.{name}", "a name of letters, digits and _ (not starting with a digit)")
        elif not isinstance(path, str):
            bad(line, f"save.{name}", 'must be a path such as "$.id"')
        else:
            try:
                save_path(path)
            except SavePathError as exc:
                bad(line, f"save.{name}", str(exc))
    return tuple(n for n, v in save.items() if _NAME.fullmatch(n) and isinstance(v, str))


def _check_one_flow(
    flow: str, members: list[FlowStep], bad: Callable[[int, str, str], None]
) -> dict[int, dict[str, Any]]:
    saved_at: dict[str, int] = {}  # var -> first step (1-based) that saves it
    for number, step in enumerate(members, 1):
        for name in step.saves:
            saved_at.setdefault(name, number)
    weight = members[0].checked.get("weight", 1.0)
    if "pause_s" in members[0].raw:
        bad(members[0].line, "pause_s", "the first step starts at the flow's slot: no pause")
    out: dict[int, dict[str, Any]] = {}
    owns: dict[str, int] = {}
    for number, step in enumerate(members, 1):
        if number > 1 and "weight" in step.raw:
            bad(
                step.line,
                "weight",
                f"a flow's weight goes on its first step (line {members[0].line})",
            )
        pause = step.raw.get("pause_s", 0)
        if (
            isinstance(pause, bool)
            or not isinstance(pause, int | float)
            or not (math.isfinite(pause) and 0 <= pause <= MAX_PAUSE_S)
        ):
            bad(step.line, "pause_s", f"must be seconds from 0 to {MAX_PAUSE_S:g}, not {pause!r}")
            pause = 0
        for name in dict.fromkeys(step.uses):
            at = saved_at.get(name)
            if at is None:
                known = ", ".join(sorted(saved_at)) or "nothing"
                bad(
                    step.line,
                    _where(step.raw, name),
                    f"${{var:{name}}}: unknown, no step of flow {flow!r} saves it "
                    f"(it saves {known})",
                )
            elif at >= number:
                bad(
                    step.line,
                    _where(step.raw, name),
                    f"${{var:{name}}} is saved by step {at} (line {members[at - 1].line}), "
                    "not by a step before this one",
                )
        own = step.raw.get("name")
        if not isinstance(own, str) or not own.strip():
            path = str(step.raw.get("path", "?")).split("?")[0]
            own = f"{step.raw.get('method', '?')} {_VAR_FIELD.sub(_braced, path)}"
        if own in owns:
            bad(step.line, "name", f"{own!r} is already step {owns[own]} of flow {flow!r}")
        owns.setdefault(own, number)
        out[step.index] = {
            "name": step_name(flow, number, len(members), own),
            "flow": flow,
            "step": number,
            "save": {k: v for k, v in step.raw.get("save", {}).items() if isinstance(v, str)}
            if isinstance(step.raw.get("save"), dict)
            else {},
            "pause_s": float(pause),
            "weight": weight,
        }
    return out
