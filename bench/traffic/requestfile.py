"""A request file: the traffic a spec's `service.requests` sends, read and checked before a run.

JSON lines, one request a line; blank lines and lines starting with `#` are skipped:

    {"name": "list notes", "method": "GET", "path": "/notes?limit=${int:1:50}", "weight": 5}
    {"method": "POST", "path": "/notes", "json": {"title": "t${hex:8}"}, "weight": 2}
    {"method": "PUT", "path": "/blob", "body_file": "blob.txt", "headers": {"X-Tag": "a"}}

Keys: `method` and `path` (required), `name`, `headers`, one of `body` (text), `json` (any JSON
value) or `body_file` (a UTF-8 file, relative to the request file), and `weight` (above 0,
default 1). Paths and bodies may hold seeded random fields (bench.traffic.templates). A `.har`
file is converted first (bench.traffic.har). Every problem is one line, `<file>:<line>: <field>:
<message>`, and all of them are found before anything starts; the runner's spec loading turns
them into spec errors (exit 2).

About 560 lines: every key's check with its file:line error lives beside the reading, so a
reader finds a key's meaning and its refusal in one place (flows: bench.traffic.flows).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import mimetypes
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bench.traffic.flows import check_flows
from bench.traffic.har import convert_har
from bench.traffic.issues import RequestFileError, RequestIssue
from bench.traffic.templates import (
    TemplateError,
    check_json,
    compile_template,
    json_fixed,
    one_row_per_feed,
    render_json,
    resolve_feeds,
)
from service.config import HOSTED_PREFIX  # the harness's paths inside a hosted app

__all__ = [
    "HEALTH_NAME",
    "HttpRequest",
    "RequestMix",
    "check_requests",
    "load_requests",
    "parse_request_lines",
    "render_variants",
    "shown",
]

#: The endpoint name of the harness's own probes (idle stage, warm-up): no request may take it.
HEALTH_NAME = "health"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
KEYS = (
    "name",
    "method",
    "path",
    "headers",
    "body",
    "json",
    "body_file",
    "form",
    "weight",
    "flow",
    "save",
    "pause_s",
)
#: Headers the HTTP client sets itself, per connection or per body: a request may not set them.
MANAGED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_MAX_BODY_FILE = 16 * 1024 * 1024


class HttpRequest(BaseModel):
    """One request of the mix as the load generator receives it (inside its LoadConfig).

    `path` and the body are templates, rendered into `pool_size` variants before t0;
    `body_kind` says which body there is: none, `text` (`body`), `json` (`json_value`) or
    `binary` (`body`, the bytes of a body file that is not UTF-8 text, base64: sent as they
    are, no field read in them).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    path: str = Field(pattern=r"^/")
    headers: dict[str, str] = Field(default_factory=dict)
    content_type: str | None = None
    body_kind: Literal["none", "text", "json", "binary", "form"] = "none"
    body: str | None = None
    json_value: Any = None
    #: a form's parts: {"name", "text"} (a template) or {"name", "filename",
    #: "content_type", "data"} (a file, base64)
    form: list[dict[str, str]] | None = None
    weight: float = Field(1.0, gt=0)
    #: the flow this request is a step of (bench.traffic.flows), None: a request on its own;
    #: its step (1 first), what it saves from its answer, and its pause after the previous
    #: step's answer. A later step carries its flow's weight but is never drawn on its own.
    flow: str | None = None
    step: int = Field(0, ge=0)
    save: dict[str, str] = Field(default_factory=dict)
    pause_s: float = Field(0.0, ge=0)

    @property
    def drawn(self) -> bool:
        """Whether the schedule draws it: a request on its own, or a flow's first step."""
        return self.step <= 1

    @property
    def fixed(self) -> bool:
        """True when path and body hold no random field (one variant is enough)."""
        if not compile_template(self.path).fixed:
            return False
        if self.body_kind == "text" and self.body is not None:
            return compile_template(self.body).fixed
        if self.body_kind == "form":
            return all(compile_template(p["text"]).fixed for p in self.form or [] if "text" in p)
        return self.body_kind != "json" or json_fixed(self.json_value)


@dataclass(frozen=True)
class RequestMix:
    """The requests of a file, its digest (for the spec hash) and a one-line account."""

    file: Path
    requests: tuple[HttpRequest, ...]
    sha256: str
    summary: str

    @property
    def weights(self) -> dict[str, float]:
        """The mix the schedule draws from: a flow's later steps 0 (they follow its first)."""
        return {r.name: r.weight if r.drawn else 0.0 for r in self.requests}

    def record(self) -> dict[str, Any]:
        """The mix as the manifest keeps it: enough for the article to name the traffic on a
        machine that does not have the request file."""
        return {
            "requests_file": self.file.name,
            "requests_sha256": self.sha256,
            "summary": self.summary,
            "har": self.file.name if self.file.suffix.lower() == ".har" else None,
            "requests": [
                {
                    "name": r.name,
                    "method": r.method,
                    "path": r.path,
                    "weight": r.weight,
                    **({"flow": r.flow, "step": r.step} if r.flow else {}),
                }
                for r in self.requests
            ],
        }


# ---------------------------------------------------------------------------------------------
# Checking raw requests (from JSON lines or a converted HAR)


def shown(path: Path) -> str:
    """A path as errors show it: relative to the working folder when it lies inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


@dataclass
class _Checker:
    """Checks raw requests one key at a time, collecting every problem rather than stopping
    at the first: a user fixing a file sees all its mistakes in one go."""

    file: str
    base_dir: Path
    issues: list[RequestIssue] = field(default_factory=list)
    body_files: list[Path] = field(default_factory=list)

    def bad(self, line: int, key: str, message: str) -> None:
        self.issues.append(RequestIssue(self.file, line, key, message))

    def feeds(self, text: str) -> str:
        """The text with its feed files made absolute (the generator renders from another
        folder); the files join the body files, hashed into the spec."""
        text, files = resolve_feeds(text, self.base_dir)
        self.body_files += [f for f in files if f not in self.body_files]
        return text

    def feeds_json(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.feeds(value)
        if isinstance(value, list):
            return [self.feeds_json(v) for v in value]
        if isinstance(value, dict):
            return {self.feeds(k): self.feeds_json(v) for k, v in value.items()}
        return value

    def template(self, line: int, key: str, text: str) -> bool:
        try:
            compile_template(text)
        except TemplateError as exc:
            self.bad(line, key, str(exc))
            return False
        return True

    def request(self, line: int, raw: dict[str, Any]) -> dict[str, Any] | None:
        """A checked request as HttpRequest keys (name still optional), or None."""
        before = len(self.issues)
        for key in raw:
            if key not in KEYS:
                self.bad(line, str(key), f"unknown key (known: {', '.join(KEYS)})")
        out: dict[str, Any] = {}
        method = raw.get("method")
        if method is None:
            self.bad(line, "method", "is required")
        elif not isinstance(method, str) or method.upper() not in METHODS:
            self.bad(line, "method", f"must be one of {', '.join(METHODS)}, not {method!r}")
        else:
            out["method"] = method.upper()
        path = raw.get("path")
        if path is None:
            self.bad(line, "path", "is required")
        elif not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
            self.bad(line, "path", f"must start with one / (no scheme, no host), not {path!r}")
        elif re.search(r"[\s\x00-\x1f\x7f#]", path):
            self.bad(line, "path", "must not hold spaces, control characters or a #fragment")
        elif path.startswith(HOSTED_PREFIX):
            self.bad(line, "path", f"{HOSTED_PREFIX} is the harness's own (stats, probes)")
        elif self.template(line, "path", path := self.feeds(path)):
            out["path"] = path
        if "name" in raw:
            name = raw["name"]
            if not isinstance(name, str) or not name.strip() or len(name) > 200:
                self.bad(line, "name", "must be a non-empty text of at most 200 characters")
            elif name == HEALTH_NAME:
                self.bad(line, "name", f"{HEALTH_NAME!r} is the harness's own probe: pick another")
            else:
                out["name"] = name
        headers = self.headers(line, raw.get("headers", {}))
        out["headers"] = headers
        self.body(line, raw, headers, out)
        weight = raw.get("weight", 1)
        if (
            isinstance(weight, bool)
            or not isinstance(weight, int | float)
            or not (math.isfinite(weight) and weight > 0)
        ):
            self.bad(line, "weight", f"must be a number above 0, not {weight!r}")
        else:
            out["weight"] = float(weight)
        return out if len(self.issues) == before else None

    def headers(self, line: int, headers: Any) -> dict[str, str]:
        if not isinstance(headers, dict):
            self.bad(line, "headers", "must be an object of header names to text values")
            return {}
        out: dict[str, str] = {}
        for name, value in headers.items():
            where = f"headers.{name}"
            if not _TOKEN.match(name):
                self.bad(line, where, "not a valid header name")
            elif name.lower() in MANAGED_HEADERS:
                self.bad(line, where, "set by the HTTP client itself: leave it out")
            elif not isinstance(value, str) or re.search(r"[\r\n\x00]", value):
                self.bad(line, where, "must be text on one line")
            elif self.template(line, where, value):  # `${env:TOKEN}`, a flow's `${var:...}`
                out[name] = value
        return out

    def body(self, line: int, raw: dict[str, Any], headers: dict[str, str], out: dict) -> None:
        given = [k for k in ("body", "json", "body_file", "form") if k in raw]
        if len(given) > 1:
            self.bad(line, given[1], f"give one of body, json, body_file or form, not {given}")
            return
        typed = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
        if not given:
            return
        key = given[0]
        value = raw[key]
        if key == "body":
            if not isinstance(value, str):
                self.bad(line, "body", "must be text (use json for a JSON value)")
            elif self.template(line, "body", value := self.feeds(value)):
                out.update(body_kind="text", body=value)
                out["content_type"] = typed or "text/plain; charset=utf-8"
        elif key == "json":
            value = self.feeds_json(value)
            try:
                check_json(value)
            except TemplateError as exc:
                self.bad(line, "json", str(exc))
            else:
                out.update(body_kind="json", json_value=value)
                out["content_type"] = typed or "application/json"
        elif key == "form":
            self.form(line, value, typed, out)
        else:
            self.body_file(line, value, typed, out)

    def form(self, line: int, value: Any, typed: str | None, out: dict) -> None:
        """A multipart/form-data body from a declarative form: `{"title": "note ${int:1:9}",
        "attachment": {"file": "logo.png"}}`; text fields may hold fields, files are sent as
        they are with their content type."""
        if typed is not None:
            self.bad(line, "headers.Content-Type", "a form sets its own multipart type")
            return
        if not isinstance(value, dict) or not value:
            self.bad(line, "form", "must be an object of field names to text or {file: NAME}")
            return
        parts: list[dict[str, Any]] = []
        for name, field_value in value.items():
            where = f"form.{name}"
            if not name or re.search(r'["\r\n]', name):
                self.bad(line, where, "a field name without quotes or line breaks")
            elif isinstance(field_value, str):
                field_value = self.feeds(field_value)
                if self.template(line, where, field_value):
                    parts.append({"name": name, "text": field_value})
            elif isinstance(field_value, dict) and isinstance(field_value.get("file"), str):
                extra = set(field_value) - {"file", "content_type"}
                if extra:
                    self.bad(line, where, f"unknown key {sorted(extra)[0]!r} (file, content_type)")
                    continue
                path = self.base_dir / field_value["file"]
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    self.bad(line, where, f"cannot read {field_value['file']!r}: {exc.strerror}")
                    continue
                if len(data) > _MAX_BODY_FILE:
                    self.bad(line, where, f"{field_value['file']!r} is larger than 16 MiB")
                    continue
                self.body_files.append(path)
                kind = field_value.get("content_type") or (
                    mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                )
                parts.append(
                    {
                        "name": name,
                        "filename": path.name,
                        "content_type": kind,
                        "data": base64.b64encode(data).decode("ascii"),
                    }
                )
            else:
                self.bad(line, where, 'must be text or {"file": NAME}')
        if len(parts) == len(value):
            # a boundary of the form's own digest: one no file of it holds by chance
            sep = "allocstudy-" + hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]
            out.update(
                body_kind="form", form=parts, content_type=f"multipart/form-data; boundary={sep}"
            )

    def body_file(self, line: int, value: Any, typed: str | None, out: dict) -> None:
        if not isinstance(value, str) or not value:
            self.bad(line, "body_file", "must be a file name, relative to the request file")
            return
        path = Path(value) if Path(value).is_absolute() else self.base_dir / value
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.bad(line, "body_file", f"cannot read {value!r}: {exc.strerror or exc}")
            return
        if len(data) > _MAX_BODY_FILE:
            self.bad(line, "body_file", f"{value!r} is larger than 16 MiB")
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:  # an image, an archive, a protobuf: sent byte for byte
            self.body_files.append(path)
            guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            out.update(
                body_kind="binary",
                body=base64.b64encode(data).decode("ascii"),
                content_type=typed or guessed,
            )
            return
        if self.template(line, "body_file", text := self.feeds(text)):
            self.body_files.append(path)
            guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            out.update(body_kind="text", body=text, content_type=typed or guessed)


def _default_name(method: str, path: str) -> str:
    return f"{method} {path.split('?', 1)[0]}"


def _named(checked: list[tuple[int, dict[str, Any]]], checker: _Checker) -> list[HttpRequest]:
    """Give every request a unique name: explicit names must differ, default ones get #2..."""
    taken: dict[str, int] = {}
    for line, req in checked:
        if "name" in req:
            if req["name"] in taken:
                first = taken[req["name"]]
                checker.bad(line, "name", f"{req['name']!r} is already the name on line {first}")
            taken.setdefault(req["name"], line)
    out: list[HttpRequest] = []
    for line, req in checked:
        if "name" not in req:
            base = _default_name(req["method"], req["path"])
            name, n = base, 1
            while name in taken or name == HEALTH_NAME:
                n += 1
                name = f"{base} #{n}"
            taken[name] = line
            req = {**req, "name": name}
        out.append(HttpRequest.model_validate(req))
    return out


def check_requests(
    raw: Iterable[tuple[int, Any]], *, file: str, base_dir: Path
) -> tuple[list[HttpRequest], list[Path], list[RequestIssue]]:
    """Check raw requests (line, object): the requests, the body and feed files read (hashed
    into the spec), the problems."""
    checker = _Checker(file, base_dir)
    checked: list[tuple[int, int, dict[str, Any]]] = []  # (index in order, line, request)
    order: list[tuple[int, dict[str, Any], dict[str, Any]]] = []  # for the flows' checks
    count = 0
    for line, obj in raw:
        count += 1
        if not isinstance(obj, dict):
            checker.bad(line, "", "a request must be a JSON object")
            continue
        req = checker.request(line, obj)
        if req is not None:
            checked.append((len(order), line, req))
        order.append((line, obj, req or {}))
    if count == 0:
        checker.bad(1, "", "no requests: write one JSON object a line")
    steps = check_flows(order, checker.bad)
    requests = _named([(line, {**req, **steps.get(at, {})}) for at, line, req in checked], checker)
    return requests, checker.body_files, checker.issues


def parse_request_lines(text: str, file: str) -> Iterable[tuple[int, Any]]:
    """(line, decoded object) of every request line; RequestFileError lists the lines that
    are not JSON (all of them, not just the first)."""
    issues: list[RequestIssue] = []
    out: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            out.append((number, json.loads(stripped)))
        except json.JSONDecodeError as exc:
            issues.append(
                RequestIssue(file, number, "", f"not valid JSON: {exc.msg} (column {exc.colno})")
            )
    if issues:
        raise RequestFileError(issues)
    return out


def load_requests(path: Path) -> RequestMix:
    """Read a request file (JSON lines, or a HAR by its .har suffix); RequestFileError lists
    every problem with its line."""
    file = shown(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise RequestFileError(
            [RequestIssue(file, 1, "", f"cannot read: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise RequestFileError([RequestIssue(file, 1, "", "not UTF-8 text")]) from None
    if path.suffix.lower() == ".har":
        raw, account = convert_har(text, file)
    else:
        raw, account = parse_request_lines(text, file), None
    requests, body_files, issues = check_requests(raw, file=file, base_dir=path.parent)
    if issues:
        raise RequestFileError(sorted(issues, key=lambda i: i.line))
    digest = hashlib.sha256(data)
    for body_file in body_files:
        digest.update(b"\0" + str(body_file.name).encode() + b"\0" + body_file.read_bytes())
    drawn = [r for r in requests if r.drawn]  # a flow counts once, by its first step
    total = sum(r.weight for r in drawn)
    flows = len({r.flow for r in requests if r.flow})
    summary = account or (
        f"{file}: {len(requests)} requests"
        + (f" ({flows} flow{'s' if flows > 1 else ''} of several steps)" if flows else "")
        + ", "
        + ", ".join(f"{r.flow or r.name} {r.weight / total:.0%}" for r in drawn[:6])
        + (", ..." if len(drawn) > 6 else "")
    )
    return RequestMix(path, tuple(requests), digest.hexdigest(), summary)


# ---------------------------------------------------------------------------------------------
# Variants: the rendered requests the generator sends


def multipart_body(parts: list[dict[str, str]], rng: random.Random, sep: str) -> bytes:
    """A multipart/form-data body (RFC 7578): text fields rendered, files as they are."""
    out = bytearray()
    for part in parts:
        out += f"--{sep}\r\n".encode()
        if "text" in part:
            out += f'Content-Disposition: form-data; name="{part["name"]}"\r\n\r\n'.encode()
            out += compile_template(part["text"]).render(rng).encode()
        else:
            out += (
                f'Content-Disposition: form-data; name="{part["name"]}"; '
                f'filename="{part["filename"]}"\r\nContent-Type: {part["content_type"]}\r\n\r\n'
            ).encode()
            out += base64.b64decode(part["data"])
        out += b"\r\n"
    out += f"--{sep}--\r\n".encode()
    return bytes(out)


def render_variants(request: HttpRequest, count: int, seed: int) -> list[tuple[str, bytes | None]]:
    """`count` (path, body) variants of a request, or one when it has no random field.

    Seeded by the seed and the request's name (a text seed hashes the same in every process),
    so every run and every allocator sends the same variants in the same order.
    """
    rng = random.Random(f"{seed}:{request.name}")
    path = compile_template(request.path)
    text = compile_template(request.body) if request.body_kind == "text" and request.body else None
    out: list[tuple[str, bytes | None]] = []
    for _ in range(1 if request.fixed else count):
        with one_row_per_feed():  # an id and its name come from one row of their feed
            rendered_path = path.render(rng)
            body: bytes | None = None
            if request.body_kind == "text":
                body = (text.render(rng) if text else "").encode()
            elif request.body_kind == "json":
                body = json.dumps(render_json(request.json_value, rng)).encode()
            elif request.body_kind == "binary":
                body = base64.b64decode(request.body or "")
            elif request.body_kind == "form":
                sep = (request.content_type or "").partition("boundary=")[2]
                body = multipart_body(request.form or [], rng, sep)
        out.append((rendered_path, body))
    return out
