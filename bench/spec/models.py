"""Experiment specs: YAML files validated by Pydantic models.

A spec says which allocators to compare and what load to put on the service and the C++
control. Every validation error is reported as one line naming the file, the line, the
field path and what is wrong, so a user editing a spec never sees a traceback.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from bench.errors import EXIT_USAGE, UserError
from service.churn import calls_to_fill, short_pool
from service.config import ChurnConfig, churn_problems

__all__ = [
    "BUILTIN_ALLOCATORS",
    "ChurnSpec",
    "ControlSpec",
    "LibraryAllocator",
    "MachineSpec",
    "ServiceSpec",
    "SourceAllocator",
    "SourceSpec",
    "Spec",
    "SpecError",
    "VariantAllocator",
    "load_spec",
    "parse_spec",
]

#: Allocators the registry knows by name (bench.allocators.registry resolves them).
BUILTIN_ALLOCATORS: tuple[str, ...] = (
    "glibc",
    "jemalloc",
    "tcmalloc",
    "mimalloc-v2",
    "mimalloc-v3",
    "mimalloc-bun",
)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChurnSpec(_Model):
    """The live-set model of /churn, per worker (service.churn explains it; the guide too)."""

    live_buffers: int = Field(5000, gt=0, description="bound of the live set: buffers per worker")
    initial_buffers: int | None = Field(
        None,
        ge=0,
        description="long-lived buffers a worker allocates at start-up (default: 5% of "
        "live_buffers)",
    )
    min_bytes: int = Field(4096, gt=0, description="smallest buffer, bytes")
    max_bytes: int = Field(65536, gt=0, description="largest buffer, bytes")
    alloc_per_call: int = Field(16, gt=0, description="buffers allocated by one /churn call")
    long_lived_share: float = Field(
        0.015,
        ge=0,
        le=1,
        description="share of new buffers that are long-lived (pins, kept until evicted)",
    )
    short_lifetime_s: float = Field(
        5.0,
        gt=0,
        lt=1e6,
        description="mean time to live of a short-lived buffer, seconds (uniform over 0..2x); "
        "expired buffers are freed at the worker's next request",
    )
    seed: int = Field(1, description="seed of the per-worker random stream")

    @model_validator(mode="after")
    def _bounds(self) -> ChurnSpec:
        problems = churn_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def mean_bytes(self) -> float:
        return (self.min_bytes + self.max_bytes) / 2

    def config(self) -> ChurnConfig:
        """The same section as the service reads it."""
        return ChurnConfig(**self.model_dump())


class PayloadSpec(_Model):
    """The JSON and XML documents the load generator sends (order-like records).

    Sizes are drawn per document: log-uniform by default (as many documents of 4-40 items as
    of 40-400, so most are a few KB and some a few hundred KB, as real API traffic is), or
    uniform between the bounds.
    """

    min_items: int = Field(4, gt=0, description="fewest line items in one document")
    max_items: int = Field(500, gt=0, description="most line items in one document")
    distribution: Literal["log-uniform", "uniform"] = Field(
        "log-uniform", description="how the number of items is drawn between the bounds"
    )
    seed: int = Field(7, description="seed of the payload stream")

    @model_validator(mode="after")
    def _bounds(self) -> PayloadSpec:
        if self.min_items > self.max_items:
            raise ValueError(
                f"min_items ({self.min_items}) must not exceed max_items ({self.max_items})"
            )
        return self


Endpoint = Literal["churn", "json", "xml"]


class ServiceSpec(_Model):
    """The Python service experiment: workers, open-loop rate, phases and traffic mix."""

    workers: int = Field(4, gt=0, le=64)
    python_malloc: Literal["pymalloc", "malloc"] = "pymalloc"
    rate: float = Field(200.0, gt=0, le=100_000, description="requests per second, open loop")
    warmup_s: float = Field(30.0, ge=0)
    load_s: float = Field(600.0, gt=0)
    idle_s: float = Field(120.0, ge=0)
    sample_interval_s: float = Field(1.0, ge=0.1, le=60)
    settle_window_s: float = Field(
        10.0, gt=0, description="settled = median anon memory over the last this many s of idle"
    )
    warmup_rate: float | None = Field(
        None, gt=0, description="open-loop rate during warm-up (default: a tenth of rate)"
    )
    idle_rate: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="GET /health requests per second during idle, as a deployment's probes "
        "send (0: a silent idle, where nothing calls the allocator)",
    )
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    mix: dict[Endpoint, float] = Field(default_factory=lambda: {"churn": 2, "json": 1, "xml": 1})
    churn: ChurnSpec = Field(default_factory=ChurnSpec)
    payload: PayloadSpec = Field(default_factory=PayloadSpec)

    @field_validator("mix")
    @classmethod
    def _mix(cls, mix: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in mix.values()):
            raise ValueError("weights must be 0 or more")
        if sum(mix.values()) <= 0:
            raise ValueError("at least one endpoint needs a weight above 0")
        return mix

    @model_validator(mode="after")
    def _short_pool_fits(self) -> ServiceSpec:
        room = self.churn.live_buffers - self.churn.config().start_buffers
        if self.short_pool > 0.9 * room:
            raise ValueError(
                f"at this rate the short-lived buffers alone (about {self.short_pool:,.0f} a "
                f"worker) would fill churn.live_buffers ({self.churn.live_buffers}): raise "
                "live_buffers, or lower churn.alloc_per_call or churn.short_lifetime_s"
            )
        return self

    @model_validator(mode="after")
    def _window(self) -> ServiceSpec:
        if self.idle_s > 0 and self.settle_window_s > self.idle_s:
            raise ValueError(
                f"settle_window_s ({self.settle_window_s}) must not exceed idle_s ({self.idle_s})"
            )
        return self

    @property
    def live_bytes(self) -> int:
        """Target live set of the whole service (all workers), bytes."""
        return int(self.workers * self.churn.live_buffers * self.churn.mean_bytes)

    @property
    def churn_rate_per_worker(self) -> float:
        """/churn calls a worker serves per second of load, on average."""
        share = self.mix.get("churn", 0.0) / sum(self.mix.values())
        return self.rate * share / self.workers

    @property
    def short_pool(self) -> float:
        """Short-lived buffers a worker holds at once under the load, on average."""
        return short_pool(self.churn.config(), self.churn_rate_per_worker)

    @property
    def fill_s(self) -> float | None:
        """Seconds of load until the live sets reach their bound, on average (None: never)."""
        per_worker = self.churn_rate_per_worker
        calls = calls_to_fill(self.churn.config(), per_worker)
        if per_worker <= 0 or calls == float("inf"):
            return None
        return calls / per_worker


class ControlSpec(_Model):
    """The bare C++ control: same churn, same allocators, no Python runtime."""

    threads: int = Field(4, gt=0, le=256)
    live_bytes: str | int = Field(
        "match-service", description="'match-service' or a byte count of the shared live set"
    )
    seconds: float = Field(20.0, gt=0)
    idle_s: Literal["match-service"] | Annotated[float, Field(ge=0)] = Field(
        "match-service",
        description="rest after the churn, with the live set held, so decay timers can act: "
        "'match-service' (the service's idle_s, so both settle over the same time) or seconds "
        "(0 or more); a rest shorter than the service's is flagged in the results",
    )
    repeats: int = Field(3, gt=0, le=100)
    share: Literal["shard", "global"] = Field(
        "shard",
        description="shard: each thread frees its own survivors, as each service worker does; "
        "global: any thread frees any survivor (cross-thread frees)",
    )
    enabled: bool = True

    @field_validator("live_bytes")
    @classmethod
    def _live_bytes(cls, value: str | int) -> str | int:
        if value == "match-service" or (isinstance(value, int) and value > 0):
            return value
        raise ValueError("must be 'match-service' or a byte count greater than 0")

    @field_validator("idle_s", mode="before")
    @classmethod
    def _idle_s(cls, value: Any) -> Any:
        # Before pydantic's own union checks: one clear message instead of one per branch, and
        # no quiet coercion of a boolean or a quoted number into seconds.
        if value == "match-service" and isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value) and value >= 0:
                return float(value)
        raise ValueError("must be 'match-service' or a number of seconds, 0 or more")


class MachineSpec(_Model):
    """Which confounds the runner may set on the machine (they are always recorded)."""

    set_confounds: bool = Field(
        True, description="turn THP off where writable (restored afterwards), drop caches as root"
    )
    pin_cores: bool = Field(True, description="pin the load generator away from the service")
    cgroup: Literal["auto", "none"] = Field(
        "auto", description="auto: a fresh memory cgroup per run when possible; none: procfs"
    )


class VariantAllocator(_Model):
    """A built-in allocator with extra environment (e.g. jemalloc with background threads)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    base: str
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(default_factory=dict)
    description: str = ""

    @field_validator("base")
    @classmethod
    def _known_base(cls, base: str) -> str:
        if base not in BUILTIN_ALLOCATORS:
            raise ValueError(f"unknown allocator {base!r} (known: {', '.join(BUILTIN_ALLOCATORS)})")
        return base


class LibraryAllocator(_Model):
    """An allocator given as a shared library file to preload."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    library: Path
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(default_factory=dict)
    description: str = ""


class SourceSpec(_Model):
    """Where a source-built allocator comes from and how cmake builds it."""

    path: Path | None = None
    git: str | None = None
    commit: Annotated[str, Field(pattern=r"^[0-9a-f]{7,40}$")] | None = None
    cmake_args: list[str] = Field(default_factory=list)
    library: str = Field("*.so", description="glob of the built shared library, in the build tree")

    @model_validator(mode="after")
    def _one_origin(self) -> SourceSpec:
        if (self.path is None) == (self.git is None):
            raise ValueError("give exactly one of path or git")
        if self.git is not None and self.commit is None:
            raise ValueError("a git source needs a pinned commit")
        return self


class SourceAllocator(_Model):
    """An allocator built from a source tree with cmake, cached while its inputs are unchanged."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    source: SourceSpec
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(default_factory=dict)
    description: str = ""


def _entry_kind(value: Any) -> str:
    """Which kind of allocator entry a value is (called on raw input and on models)."""
    if isinstance(value, str):
        return "builtin"
    if isinstance(value, SourceAllocator):
        return "source"
    if isinstance(value, LibraryAllocator):
        return "library"
    if isinstance(value, VariantAllocator):
        return "variant"
    if isinstance(value, dict):
        if "source" in value:
            return "source"
        if "library" in value:
            return "library"
        return "variant"
    return "builtin"


def _known_builtin(name: str) -> str:
    if name not in BUILTIN_ALLOCATORS:
        raise ValueError(f"unknown allocator {name!r} (known: {', '.join(BUILTIN_ALLOCATORS)})")
    return name


BuiltinName = Annotated[str, AfterValidator(_known_builtin)]
AllocatorEntry = Annotated[
    Annotated[BuiltinName, Tag("builtin")]
    | Annotated[VariantAllocator, Tag("variant")]
    | Annotated[LibraryAllocator, Tag("library")]
    | Annotated[SourceAllocator, Tag("source")],
    Discriminator(_entry_kind),
]


class Spec(_Model):
    """One experiment: which allocators, what service load, what control."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    title: str = Field(min_length=1)
    description: str = ""
    allocators: list[AllocatorEntry] = Field(min_length=1)
    repeats: int = Field(1, gt=0, le=100)
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    control: ControlSpec = Field(default_factory=ControlSpec)
    machine: MachineSpec = Field(default_factory=MachineSpec)

    @field_validator("allocators")
    @classmethod
    def _allocators(cls, entries: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for entry in entries:
            name = entry if isinstance(entry, str) else entry.name
            if name in seen:
                raise ValueError(f"allocator {name!r} is listed twice")
            seen.add(name)
        return entries

    @property
    def allocator_names(self) -> list[str]:
        return [e if isinstance(e, str) else e.name for e in self.allocators]

    @property
    def control_live_bytes(self) -> int:
        """The C++ control's live set: the service's, or the byte count the spec gives."""
        if self.control.live_bytes == "match-service":
            return self.service.live_bytes
        return int(self.control.live_bytes)

    @property
    def control_idle_s(self) -> float:
        """The C++ control's rest after its churn: the service's idle_s, or the seconds given.

        Matching the service by default lets the control's allocators run the same decay
        timers for as long, and settle over the same window, so their settled memory compares.
        """
        if self.control.idle_s == "match-service":
            return self.service.idle_s
        return float(self.control.idle_s)

    def canonical_json(self) -> str:
        """A stable text of the resolved spec (defaults filled), the input of spec_hash."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Loading with line numbers


@dataclass(frozen=True)
class SpecIssue:
    """One problem of a spec, already located."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
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
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["loc"] and err["loc"][-1] == "[key]":
        return f"unknown key ({str(err['msg']).replace('Input should be ', 'expected ')})"
    msg = str(err["msg"])
    for pattern, repl in _MESSAGE_REWRITES:
        msg = pattern.sub(repl, msg)
    return msg


def _issues_from(error: ValidationError, data: Any, file: str) -> list[SpecIssue]:
    out: list[SpecIssue] = []
    seen: set[tuple[int | None, str]] = set()
    for err in error.errors():
        line, path = _locate(data, tuple(err["loc"]))
        if (line, path) in seen:
            continue  # a union may report the same place twice; one line a place is enough
        seen.add((line, path))
        out.append(SpecIssue(file, line, path, _message(err)))
    return out


def _anchor_paths(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Relative library and source paths of allocator entries mean: beside the spec file."""
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


def parse_spec(text: str, file: str = "<spec>", *, base_dir: Path | None = None) -> Spec:
    """Parse and validate YAML text; raise SpecError naming file, line and field.

    Relative allocator paths are taken from `base_dir` (the spec's folder) when given.
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
    try:
        plain = _plain(data)
        return Spec.model_validate(_anchor_paths(plain, base_dir) if base_dir else plain)
    except ValidationError as exc:
        raise SpecError(_issues_from(exc, data, file)) from None


def _plain(node: Any) -> Any:
    """ruamel's round-trip types as plain dicts and lists (pydantic wants ordinary types)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_spec(path: str | Path) -> Spec:
    """Load a spec file; raise SpecError (one line per problem) for anything wrong with it."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([SpecIssue(str(path), None, "", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([SpecIssue(str(path), None, "", f"cannot read: {exc}")]) from None
    return parse_spec(text, str(path), base_dir=p.resolve().parent)
