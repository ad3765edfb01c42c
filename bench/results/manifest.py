"""The manifest of a run (docs/guide/data-format.md): its records as types, one writer, readers.

manifest.json is written by the run lifecycle (bench.run.lifecycle) after every cell and read
back by --resume, `doctor`, `runs` and the report. Its records are Pydantic models here, next
to the format version, so every writer goes through one definition and one serialiser:
`write_manifest` (the one writer) takes a `Manifest`. The JSON is the same as when it was a
raw dict: a record's keys are written in their declared order, unknown keys (a newer field, a
key the reference run adds) are kept as they came, and a key that only some runs have (a
cluster run's `hosts`, a calibration, a memory limit's account) is written only when it was
set, so `Manifest.model_dump(mode="json")` of a loaded run is exactly the dict it was read from.

Readers: `read_manifest` gives the checked dict (what the report reads today); `load_manifest`
gives the typed `Manifest`, refusing a file whose records do not fit with the key that did not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    ValidationError,
    model_serializer,
)

from bench.errors import UserError
from bench.results.tables import atomic_write_bytes

__all__ = [
    "FINISHED",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "AllocatorRecord",
    "CellLine",
    "Manifest",
    "ManifestError",
    "Record",
    "RoundOrder",
    "load_manifest",
    "read_manifest",
    "write_manifest",
]

#: Bumped whenever a key changes meaning or a required key is removed.
MANIFEST_FORMAT = "2"
#: The manifest's file name inside a run folder.
MANIFEST_NAME = "manifest.json"
#: The statuses with which an allocator's part of a run is over (kept by --resume).
FINISHED = ("ok", "failed", "skipped")


class ManifestError(UserError):
    """A manifest that is missing, unreadable or of an unknown format; str() says which."""


class Record(BaseModel):
    """A manifest record: declared keys first, unknown keys kept, a key the record did not
    have when read (or an `OPTIONAL` one never set) not written: a run never gains keys as
    nulls or defaults by being read and written again."""

    model_config = ConfigDict(extra="allow", validate_assignment=False)
    OPTIONAL: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def new(cls, **data: Any) -> Self:
        """A record made here (not read): every declared key but the optional ones is written,
        defaults included. A record read from a file (model_validate) keeps the keys it had."""
        made = cls(**data)
        made.__pydantic_fields_set__.update(set(cls.model_fields) - cls.OPTIONAL)
        return made

    @model_serializer(mode="wrap")
    def _only_set_keys(self, handler: Any, info: SerializationInfo) -> dict[str, Any]:
        data = handler(self)
        for key in type(self).model_fields:
            if key not in self.model_fields_set:
                data.pop(key, None)
        return data


def _per_experiment() -> dict[str, list[Any]]:
    return {"service": [], "control": []}


class AllocatorRecord(Record):
    """One allocator's part of a run: what it is, its status, and every repeat's account
    (the per-repeat accounts are typed loosely: older runs and hand-made ones vary in them)."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"memory_limit", "version_by_host"})

    name: str
    kind: str | None = None
    base: str | None = None
    same_as: str | None = None
    description: str | None = None
    library: str | None = None
    expected_library: str | None = None
    version: str | None = None
    sha256: str | None = None
    env: dict[str, Any] = Field(default_factory=dict)
    status: str = "pending"
    reason: str | None = None
    fix: str | None = None
    evidence: Any = Field(default_factory=_per_experiment)
    knobs: Any = Field(default_factory=list)  # read back (bench.allocators.knobs.merge)
    timers: Any = Field(default_factory=list)  # return timers (bench.allocators.timers)
    phases: Any = Field(default_factory=_per_experiment)
    loadgen: Any = Field(default_factory=list)
    sampler: Any = Field(default_factory=list)
    live_set: Any = Field(default_factory=list)
    wall_s: Any = Field(default_factory=_per_experiment)
    started: str | None = None
    finished: str | None = None
    memory_limit: list[Any] | None = None  # a limit's account per repeat
    version_by_host: dict[str, Any] | None = None  # a cluster run's hosts' verifications


class CellLine(Record):
    """The manifest's line for one attempt at one cell: where and when it ran, how it ended."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset({"traceback"})

    allocator: str
    experiment: str
    repeat: int
    kind: int = 0
    host: str | None = None
    worker: str | None = None
    attempt: int = 1
    status: str
    reason: str | None = None
    started: str | None = None
    finished: str | None = None
    started_unix: float | None = None
    finished_unix: float | None = None
    traceback: str | None = None  # a bug's traceback, when an exception failed the cell


class RoundOrder(Record):
    """The allocators of one round in the order they ran (bench.run.plan.round_order)."""

    round: int
    allocators: list[str]


class Manifest(Record):
    """The whole manifest.json of a run folder."""

    OPTIONAL: ClassVar[frozenset[str]] = frozenset(
        {"cells", "calibration", "cluster", "hosts", "host_kinds"}
    )

    format: str = MANIFEST_FORMAT
    tool: dict[str, Any] = Field(default_factory=dict)
    run_id: str
    spec_name: str
    spec_file: str | None = None
    spec_file_absolute: str | None = None
    spec_file_project: str | None = None
    spec_sha256: str | None = None
    spec_overrides: list[Any] = Field(default_factory=list)  # `--set` changes of this run
    spec: dict[str, Any] = Field(default_factory=dict)
    workload: dict[str, Any] | None = None
    status: str = "running"
    started: str | None = None
    finished: str | None = None
    host: dict[str, Any] = Field(default_factory=dict)
    libraries: dict[str, Any] | list[Any] | None = None  # shaping packages' versions
    confounds: dict[str, Any] = Field(default_factory=dict)
    method: dict[str, Any] = Field(default_factory=dict)
    order: list[RoundOrder] = Field(default_factory=list)
    allocators: list[AllocatorRecord] = Field(default_factory=list)
    cells: list[CellLine] | None = None
    calibration: dict[str, Any] | None = None  # the ramp that found the run's rate
    cluster: dict[str, Any] | None = None  # a cluster run's scheduler, hosts and attempts
    hosts: dict[str, Any] | None = None  # a cluster run's hosts: cells, fingerprint, kind
    host_kinds: list[str] | None = None

    def record(self, name: str) -> AllocatorRecord:
        """The allocator's record (KeyError when the run has none of that name)."""
        for rec in self.allocators:
            if rec.name == name:
                return rec
        raise KeyError(name)

    def add_cell(self, line: CellLine) -> None:
        if self.cells is None:
            self.cells = []
        self.cells.append(line)


def write_manifest(run_dir: Path, manifest: Manifest | Mapping[str, Any]) -> None:
    """Write the manifest whole under a temporary name and rename it into place. A run writes
    its `Manifest`; a mapping (a compacted copy, a test's hand-made run) is written as given."""
    data = manifest.model_dump(mode="json") if isinstance(manifest, Manifest) else manifest
    text = json.dumps(data, indent=2, sort_keys=False, default=str).encode() + b"\n"
    atomic_write_bytes(run_dir / MANIFEST_NAME, text)


def _validated(data: Mapping[str, Any], where: Path) -> Manifest:
    try:
        return Manifest.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(the manifest)"
        raise ManifestError(f"{where / MANIFEST_NAME}: {key}: {first['msg']}") from None


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """The manifest of a run folder, checked to be a JSON object of the supported format."""
    path = run_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: a manifest must be a JSON object")
    if "format" not in data:
        raise ManifestError(
            f"{path}: no `format` key, so not a manifest allocstudy wrote (or a damaged one)"
        )
    fmt = str(data["format"])
    if fmt != MANIFEST_FORMAT:
        raise ManifestError(
            f"{path}: manifest format {fmt or '(none)'} is not the supported "
            f"{MANIFEST_FORMAT}; read it with the allocstudy version that wrote it"
        )
    return data


def load_manifest(path: Path) -> Manifest:
    """The typed manifest of a run folder (or of its manifest.json): read_manifest's checks,
    then the models'; `.model_dump(mode="json")` gives back read_manifest's dict."""
    run_dir = path.parent if path.name == MANIFEST_NAME else path
    return _validated(read_manifest(run_dir), run_dir)
