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
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any
from urllib.parse import urlencode, urlsplit

from bench.traffic.issues import RequestFileError, RequestIssue
from bench.traffic.templates import escape

__all__ = ["DROPPED_HEADERS", "convert_har"]

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
    "Accept-Encoding, HTTP/2 pseudo-headers) and bodies; dropped responses, timings, cookies"
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


def convert_har(text: str, file: str) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """The requests of a HAR as request-file objects (line, object) and a one-line account.

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
    kept: list[tuple[int, str, str, str, dict[str, str], str | None]] = []
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
        kept.append((line, parts.netloc.lower(), method.upper(), path, headers, body))
    if issues:
        raise RequestFileError(issues)
    hosts = Counter(host for _, host, *_ in kept)
    main = hosts.most_common(1)[0][0] if hosts else ""
    merged: dict[tuple[str, str, str | None], dict[str, Any]] = {}
    lines_of: dict[tuple[str, str, str | None], int] = {}
    for line, host, method, path, headers, body in kept:
        if host != main:
            dropped["other host"] += 1
            continue
        key = (method, path, body)
        if key in merged:
            merged[key]["weight"] += 1
            continue
        request_obj: dict[str, Any] = {"method": method, "path": escape(path), "weight": 1}
        if headers:
            request_obj["headers"] = headers
        if body is not None:
            request_obj["body"] = escape(body)
        merged[key], lines_of[key] = request_obj, line
    out = [(lines_of[key], obj) for key, obj in merged.items()]
    repeats = sum(obj["weight"] for obj in merged.values()) - len(merged)
    drops = ", ".join(f"{n} {why}" for why, n in sorted(dropped.items())) or "none"
    summary = (
        f"{file}: {len(entries)} HAR entries -> {len(out)} requests to {main or '(no host)'} "
        f"({repeats} repeats merged into weights); entries dropped: {drops}; {_KEPT}"
    )
    return out, summary
