"""Reading a spec file: YAML in, a validated Spec out, or every problem located in the file.

Every validation error is reported as one line naming the file, the line, the field path and
what is wrong, so a user editing a spec never sees a traceback. Relative paths (allocator
libraries and sources, service.app_dir, service.requests) mean: beside the spec file. The
request file is read here too, its problems located in it (`traffic.jsonl:3: path: ...`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from bench.errors import EXIT_USAGE, UserError
from bench.spec.models import Spec
from bench.traffic.issues import RequestFileError
from bench.traffic.requestfile import load_requests

__all__ = ["SET_OPTION", "SpecError", "SpecIssue", "load_spec", "parse_spec", "spec_from_record"]

#: The option that overrides a spec key for one run; problems of its values are named by it.
SET_OPTION = "--set"


@dataclass(frozen=True)
class SpecIssue:
    """One problem of a spec, already located."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        if self.file == SET_OPTION:  # a command-line override: `--set service.rate: ...`
            return f"{SET_OPTION} {self.field}: {self.message}"
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class SpecError(UserError):
    """A spec that cannot be used; str() is one line per problem, ready for a terminal."""

    exit_code = EXIT_USAGE

    def __init__(self, issues: list[SpecIssue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))

    def terminal_text(self) -> str:
        """The problems as they are: each line already starts with the file and the line."""
        return str(self)


def _line_of(node: Any, key: Any) -> int | None:
    """1-based line of `key` inside a ruamel node, or None when ruamel kept no position."""
    try:
        if isinstance(node, CommentedMap):
            return int(node.lc.key(key)[0]) + 1
        if isinstance(node, CommentedSeq):
            return int(node.lc.item(key)[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        return None
    return None


_INTERNAL_LOC = re.compile(
    r"^(builtin|variant|library|source|\[key\]|function-.*|constrained-.*|literal\[.*)$"
)


def _locate(data: Any, loc: tuple[Any, ...]) -> tuple[int | None, str]:
    """Follow a pydantic error location through the YAML tree: (line, dotted field path).

    Parts that are not in the data (union tags, a missing key) are skipped for the walk; a
    missing key is still named in the path and gets its parent's line.
    """
    node, line, parts = data, (1 if isinstance(data, CommentedMap) else None), []
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = _line_of(node, part) or line
            node = node[part]
            parts.append(str(part))
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = _line_of(node, part) or line
            node = node[part]
            parts.append(f"[{part}]")
        elif isinstance(part, str) and _INTERNAL_LOC.match(part):
            continue
        else:
            parts.append(str(part))
            node = None
    path = ""
    for p in parts:
        path += p if p.startswith("[") or not path else f".{p}"
    return line, path


_MESSAGE_REWRITES = (
    (re.compile(r"^Input should be "), "must be "),
    (re.compile(r"^Value error, "), ""),
    (re.compile(r"^Field required$"), "is required"),
)


def _message(err: dict[str, Any]) -> str:
    loc = tuple(err["loc"])
    if (
        err["type"] == "extra_forbidden"
        and loc[:1] == ("allocators",)
        and loc[-2:-1] == ("service",)
    ):
        return (
            "unknown key: an allocator may set only max_requests and max_requests_jitter for "
            "itself (the rest of service is the same for every allocator)"
        )
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["loc"] and err["loc"][-1] == "[key]" and err["type"] == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")  # a refused key (service.env)
    if err["loc"] and err["loc"][-1] == "[key]":
        return f"unknown key ({str(err['msg']).replace('Input should be ', 'expected ')})"
    msg = str(err["msg"])
    for pattern, repl in _MESSAGE_REWRITES:
        msg = pattern.sub(repl, msg)
    return msg


def _issues_from(
    error: ValidationError, data: Any, file: str, overridden: Sequence[str] = ()
) -> list[SpecIssue]:
    """One located issue per place; a place a `--set` key covers is named by that key."""
    out: list[SpecIssue] = []
    seen: set[tuple[int | None, str]] = set()
    for err in error.errors():
        line, path = _locate(data, tuple(err["loc"]))
        if (line, path) in seen:
            continue  # a union may report the same place twice; one line a place is enough
        seen.add((line, path))
        key = next(
            (k for k in overridden if path == k or path.startswith((f"{k}.", f"{k}["))), None
        )
        if key is not None:
            out.append(SpecIssue(SET_OPTION, None, path, _message(err)))
        else:
            out.append(SpecIssue(file, line, path, _message(err)))
    return out


def _apply_overrides(data: CommentedMap, overrides: Sequence[str]) -> list[str]:
    """Set each `KEY=VALUE` (a dotted key, a YAML value) in the spec's tree; the keys set.

    The value is read as YAML, as the file's would be (`400` is a number, `[glibc, jemalloc]`
    a list); mappings on the way are made when missing, so `--set service.churn.x=1` reaches
    the model's own check (an unknown key) rather than failing here.
    """
    keys = []
    issues = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            issues.append(SpecIssue(SET_OPTION, None, key or item, "expected KEY=VALUE"))
            continue
        try:
            value = YAML(typ="safe").load(raw) if raw.strip() else None
        except MarkedYAMLError as exc:
            issues.append(
                SpecIssue(SET_OPTION, None, key, f"not a valid YAML value: {exc.problem}")
            )
            continue
        *parents, last = key.split(".")
        node: Any = data
        for i, part in enumerate(parents):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None and isinstance(node, dict):
                nxt = node[part] = CommentedMap()
            if not isinstance(nxt, dict):
                where = ".".join(parents[: i + 1])
                issues.append(SpecIssue(SET_OPTION, None, key, f"{where} is not a mapping"))
                break
            node = nxt
        else:
            node[last] = value
            keys.append(key)
    if issues:
        raise SpecError(issues)
    return keys


def _anchor_paths(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Relative paths mean: beside the spec file (allocator libraries and sources, the
    service's app_dir and request file); the spec keeps them absolute."""
    service = data.get("service")
    if isinstance(service, dict):
        for key in ("app_dir", "requests"):
            value = service.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                service[key] = str((base_dir / value).resolve())
    for entry in data.get("allocators") or []:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("library"), str) and not Path(entry["library"]).is_absolute():
            entry["library"] = str(base_dir / entry["library"])
        source = entry.get("source")
        if isinstance(source, dict) and isinstance(source.get("path"), str):
            if not Path(source["path"]).is_absolute():
                source["path"] = str(base_dir / source["path"])
    return data


def parse_spec(
    text: str,
    file: str = "<spec>",
    *,
    base_dir: Path | None = None,
    overrides: Sequence[str] = (),
) -> Spec:
    """Parse and validate YAML text; raise SpecError naming file, line and field.

    Relative paths are taken from `base_dir` (the spec's folder) when given. `overrides`
    are `KEY=VALUE` changes (`allocstudy run --set`), applied before validation so they
    are checked like the file; a problem in one is named by its key (`--set service.rate:`).
    """
    yaml = YAML(typ="rt")
    try:
        data = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise SpecError([SpecIssue(file, line, "", f"not valid YAML: {exc.problem}")]) from None
    if not isinstance(data, dict):
        raise SpecError([SpecIssue(file, 1, "", "a spec must be a mapping of keys to values")])
    keys = _apply_overrides(data, overrides)
    try:
        plain = _plain(data)
        spec = Spec.model_validate(_anchor_paths(plain, base_dir) if base_dir else plain)
    except ValidationError as exc:
        raise SpecError(_issues_from(exc, data, file, keys)) from None
    _check_requests(spec, data, file)
    spec._overrides = tuple(overrides)
    return spec


def _check_requests(spec: Spec, data: Any, file: str) -> None:
    """Read the request file now, so a bad line stops the run before anything starts; its
    problems are located in the request file itself. On the synthetic service the file's
    requests to /churn must leave the live set room, as the built-in mix must."""
    if spec.service.requests is None:
        return
    try:
        spec.service.with_request_mix(load_requests(spec.service.requests))
    except RequestFileError as exc:
        issues = [SpecIssue(i.file, i.line, i.field, i.message) for i in exc.issues[:20]]
        if len(exc.issues) > 20:
            issues.append(SpecIssue(issues[0].file, None, "", f"... {len(exc.issues) - 20} more"))
        raise SpecError(issues) from None
    if not spec.service.hosted:
        problem = spec.service.short_pool_problem()
        if problem:
            line, path = _locate(data, ("service", "requests"))
            raise SpecError([SpecIssue(file, line, path, problem)])


def spec_from_record(record: dict[str, Any]) -> Spec:
    """A spec from its resolved record (`Spec.model_dump`, as a cluster host receives it),
    its request file read here as `load_spec` reads it; SpecError for a bad one."""
    try:
        spec = Spec.model_validate(record)
    except ValidationError as exc:
        raise SpecError([SpecIssue("<spec record>", None, "", str(exc))]) from None
    _check_requests(spec, {}, "<spec record>")
    return spec


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain dicts and lists (pydantic wants ordinary types)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_spec(path: str | Path, overrides: Sequence[str] = ()) -> Spec:
    """Load a spec file (with `--set` overrides); raise SpecError, one line per problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecIssue(str(path), None, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue(str(path), None, "", f"cannot read: {exc}")]) from None
    return parse_spec(text, str(path), base_dir=p.resolve().parent, overrides=overrides)
