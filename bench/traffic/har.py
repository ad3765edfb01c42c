"""A browser's HAR export turned into a request mix: what a user clicked through, replayed.

A HAR (HTTP Archive, JSON, "Save all as HAR" in a browser's developer tools) records every
request a page made, with its answer and timings. The load generator needs only the requests
to the app under study, so conversion keeps, per entry:

- the method, and the path with its query (scheme and host dropped: the generator sends to
  the service on loopback);
- the request headers, minus those the HTTP client sets itself or that belong to one
  connection or one browser session: hop-by-hop headers (Connection, Keep-Alive,
  Proxy-Connection, Transfer-Encoding, TE, Trailer, Upgrade), Host, Content-Length, Cookie,
  Accept-Encoding (the client asks for what it can decode) and HTTP/2 pseudo-headers (`:path`);
- `postData.text` as the body (or `postData.params` form-encoded), its `mimeType` as the
  Content-Type when no header gives one.

and drops responses, timings, cookies, cache and page data. Entries to other hosts than the
most frequent one (fonts, CDNs, analytics), WebSocket entries and non-HTTP URLs (data:, blob:,
chrome-extension:) are dropped. Identical (method, path, body) entries merge into one request
whose weight is how often it was seen. Bodies and paths are taken literally: a `${` in them is
escaped, never read as a template field.

Asked to keep the order (`keep_order`, `allocstudy har --keep-order`), the kept entries are
instead one flow (bench.traffic.flows) named `session`: one step per entry, in the order they
started, nothing merged, each later step's `pause_s` the time between the end of the previous
entry's answer and its own start as recorded (0 when they overlapped: the replay sends one
step at a time, as each previous answer comes; at most MAX_PAUSE_S). Ids the app answered are
left as recorded: turning one into a saved value (`save`, `${var:NAME}`) is an edit of the
written request file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.traffic.flows import MAX_PAUSE_S
from bench.traffic.issues import RequestFileError, RequestIssue
from bench.traffic.templates import escape

__all__ = ["DROPPED_HEADERS", "SESSION_FLOW", "convert_har", "request_lines"]

#: The flow name of a session kept in order.
SESSION_FLOW = "session"

#: Request headers a converted request leaves out (compared lower-case).
DROPPED_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "cookie",
        "accept-encoding",
    }
)
_KEPT = (
    "kept method, path+query, request headers (less hop-by-hop, Host, Content-Length, Cookie, "
    "Accept-Encoding, HTTP/2 pseudo-headers) and bodies; dropped responses, {timings}cookies"
)


def _entry_lines(text: str, count: int) -> list[int]:
    """1-based line where each element of log.entries starts (1 for all when not found)."""
    match = re.search(r'"entries"\s*:\s*\[', text)
    if match is None:
        return [1] * count
    decoder, lines, at = json.JSONDecoder(), [], match.end()
    space = re.compile(r"[\s,]*")
    for _ in range(count):
        at = space.match(text, at).end()  # type: ignore[union-attr]
        lines.append(text.count("\n", 0, at) + 1)
        try:
            _, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return lines + [lines[-1]] * (count - len(lines))
    return lines


def _headers(raw: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for header in raw if isinstance(raw, list) else []:
        if not isinstance(header, dict):
            continue
        name, value = header.get("name"), header.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            continue
        if name.startswith(":") or name.lower() in DROPPED_HEADERS:
            continue
        same = next((k for k in out if k.lower() == name.lower()), None)
        if same is None:
            out[name] = value
        else:
            out[same] = f"{out[same]}, {value}"
    return out


def _body(post: Any, headers: dict[str, str]) -> str | None:
    if not isinstance(post, dict):
        return None
    mime = post.get("mimeType")
    if isinstance(mime, str) and mime and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = mime
    if isinstance(post.get("text"), str):
        return post["text"]
    params = post.get("params")
    if isinstance(params, list):
        pairs = [(p.get("name", ""), p.get("value", "")) for p in params if isinstance(p, dict)]
        return urlencode(pairs)
    return None


def _is_websocket(entry: dict[str, Any], request: dict[str, Any], scheme: str) -> bool:
    if scheme in ("ws", "wss") or entry.get("_resourceType") == "websocket":
        return True
    response = entry.get("response")
    if isinstance(response, dict) and response.get("status") == 101:
        return True
    return any(
        isinstance(h, dict) and str(h.get("name", "")).lower() == "upgrade"
        for h in request.get("headers") or []
    )


@dataclass(frozen=True)
class _Kept:
    """One HAR entry kept: where it is, what it sends, when it started and how long it took."""

    line: int
    host: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    started: float | None  # seconds since the epoch; None: not recorded or not readable
    took_s: float


def _started(entry: dict[str, Any]) -> float | None:
    text = entry.get("startedDateTime")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _took_s(entry: dict[str, Any]) -> float:
    took = entry.get("time")
    return took / 1000 if isinstance(took, int | float) and took > 0 else 0.0


def _request_obj(kept: _Kept) -> dict[str, Any]:
    obj: dict[str, Any] = {"method": kept.method, "path": escape(kept.path)}
    if kept.headers:
        obj["headers"] = kept.headers
    if kept.body is not None:
        obj["body"] = escape(kept.body)
    return obj


def _merged(kept: list[_Kept]) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """Identical (method, path, body) entries as one request weighted by how often it came."""
    merged: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    lines_of: dict[tuple[str, str, str | None], int] = {}
    for entry in kept:
        key = (entry.method, entry.path, entry.body)
        if key in merged:
            merged[key]["weight"] += 1
            continue
        merged[key], lines_of[key] = {**_request_obj(entry), "weight": 1}, entry.line
    repeats = sum(obj["weight"] for obj in merged.values()) - len(merged)
    out = [(lines_of[key], obj) for key, obj in merged.items()]
    return out, f"{len(out)} requests to {{host}} ({repeats} repeats merged into weights)"


def _session(kept: list[_Kept]) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """The entries as one flow, in the order they started, each pause as recorded."""
    ordered = sorted(kept, key=lambda k: k.started if k.started is not None else float("inf"))
    if any(k.started is None for k in kept):  # cannot be placed in time: the file's order
        ordered = kept
    out: list[tuple[int, dict[str, Any]]] = []
    names: Counter[str] = Counter()
    previous: _Kept | None = None
    for entry in ordered:
        own = f"{entry.method} {entry.path.split('?')[0]}"
        names[own] += 1
        obj: dict[str, Any] = {
            "flow": SESSION_FLOW,
            "name": own if names[own] == 1 else f"{own} #{names[own]}",
            **_request_obj(entry),
        }
        if previous is None:
            obj["weight"] = 1
        elif previous.started is not None and entry.started is not None:
            gap = entry.started - previous.started - previous.took_s
            obj["pause_s"] = round(min(max(gap, 0.0), MAX_PAUSE_S), 3)
        previous = entry
        out.append((entry.line, obj))
    timed = "" if all(k.started is not None for k in kept) else ", start times missing: no pauses"
    return (
        out,
        f"one flow of {len(out)} steps to {{host}} (recorded order, pauses as recorded{timed})",
    )


def convert_har(
    text: str, file: str, *, keep_order: bool = False
) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """The requests of a HAR as request-file objects (line, object) and a one-line account:
    merged into weights, or with `keep_order` one flow in the recorded order and timing.

    RequestFileError for a file that is not a HAR or an entry without a usable request.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        issue = RequestIssue(file, exc.lineno, "", f"not valid JSON: {exc.msg} (a .har is JSON)")
        raise RequestFileError([issue]) from None
    log = data.get("log") if isinstance(data, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        issue = RequestIssue(file, 1, "log.entries", "a HAR needs a list of entries")
        raise RequestFileError([issue])
    lines = _entry_lines(text, len(entries))
    issues: list[RequestIssue] = []
    kept: list[_Kept] = []
    dropped: Counter[str] = Counter()
    for index, (entry, line) in enumerate(zip(entries, lines, strict=True)):
        where = f"log.entries[{index}].request"
        request = entry.get("request") if isinstance(entry, dict) else None
        if not isinstance(request, dict):
            issues.append(RequestIssue(file, line, where, "is missing"))
            continue
        url, method = request.get("url"), request.get("method")
        if not isinstance(url, str) or not isinstance(method, str):
            issues.append(RequestIssue(file, line, where, "needs a url and a method"))
            continue
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if _is_websocket(entry, request, scheme):
            dropped["WebSocket"] += 1
            continue
        if scheme not in ("http", "https"):
            dropped[f"{scheme or 'relative'}: URL"] += 1
            continue
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = _headers(request.get("headers"))
        body = _body(request.get("postData"), headers)
        host = parts.netloc.lower()
        kept.append(
            _Kept(line, host, method.upper(), path, headers, body, _started(entry), _took_s(entry))
        )
    if issues:
        raise RequestFileError(issues)
    hosts = Counter(k.host for k in kept)
    main = hosts.most_common(1)[0][0] if hosts else ""
    dropped["other host"] += sum(1 for k in kept if k.host != main)
    ours = [k for k in kept if k.host == main]
    out, how = _session(ours) if keep_order else _merged(ours)
    drops = ", ".join(f"{n} {why}" for why, n in sorted(dropped.items()) if n) or "none"
    summary = (
        f"{file}: {len(entries)} HAR entries -> {how.format(host=main or '(no host)')}; "
        f"entries dropped: {drops}; " + _KEPT.format(timings="" if keep_order else "timings, ")
    )
    return out, summary


def request_lines(requests: list[tuple[int, dict[str, Any]]], summary: str) -> str:
    """Converted requests as the text of a request file: a comment with the account, then one
    JSON object a line (which `allocstudy har` writes, for the user to read and edit)."""
    head = "".join(f"# {part}\n" for part in summary.split("; "))
    return head + "".join(json.dumps(obj, ensure_ascii=False) + "\n" for _, obj in requests)
