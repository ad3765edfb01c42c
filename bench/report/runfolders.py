"""Finding studies under a results folder and loading one run: manifest, tables, freshness.

The report reads only what a run wrote (docs/guide/data-format.md). A study is a folder per spec
name; its runs are folders holding a manifest.json; `latest` (a symlink, or a text file with
the run id, for file systems without symlinks) names the newest complete run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from bench.report.errors import BadRunError, ReportError
from bench.results.manifest import MANIFEST_NAME, ManifestError, read_manifest
from bench.results.tables import TABLES, TableError, read_table, table_rows

__all__ = [
    "DOWNLOAD_ORDER",
    "RUN_COMMAND",
    "Answer",
    "Freshness",
    "IdleTraffic",
    "Run",
    "RunRef",
    "SkippedRun",
    "Study",
    "check_freshness",
    "find_studies",
    "load_run",
    "run_at",
]

#: What a user types to get results; named by every "no results" message.
RUN_COMMAND = "allocstudy run specs/quick.yaml (or make study)"

#: The tables a run writes (bench.results.tables), in the order the data table lists their
#: downloads: the summary first.
DOWNLOAD_ORDER = ("summary", *(t for t in TABLES if t != "summary"))


@dataclass(frozen=True)
class RunRef:
    """One run folder and the little of its manifest needed to list and order it."""

    study: str
    run_id: str
    path: Path
    status: str
    started: str | None
    finished: str | None


@dataclass(frozen=True)
class Study:
    """All runs of one spec name, newest first, and the one the article shows."""

    name: str
    path: Path
    runs: tuple[RunRef, ...]
    current: RunRef
    #: why `current` was chosen: "latest" (named by results/<spec>/latest) or a fallback note
    chosen_by: str


#: (done_s, worker pid, that worker's live bytes after it) of one answer of the service.
Answer = tuple[float, int, int]


@dataclass(frozen=True)
class IdleTraffic:
    """What the idle phases of one allocator's repeats received, as recorded."""

    requests: int
    failed: int
    endpoints: tuple[str, ...]


@dataclass
class Run:
    """A loaded run: its manifest and the tables the report uses, plus the files behind them."""

    ref: RunRef
    manifest: dict[str, Any]
    memory: list[dict[str, Any]]
    control: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    #: the service's live-payload answers by (allocator, repeat), in the order they were recorded
    answers: dict[tuple[str, int], list[Answer]] = field(default_factory=dict)
    #: idle-phase requests by allocator, all repeats together
    idle: dict[str, IdleTraffic] = field(default_factory=dict)
    #: workers recycled after their limit of requests (none without recycling, or before it)
    restarts: list[dict[str, Any]] = field(default_factory=list)
    #: where each worker's memory sat, every few seconds (none before the retention table)
    retention: list[dict[str, Any]] = field(default_factory=list)
    #: what each stage of the load did (none before the stages table)
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def spec(self) -> dict[str, Any]:
        """The spec as run: the manifest's, with the rate a calibration found in place of the
        ramp's top (`service.calibrate`), since that is the rate every repeat was measured at."""
        spec = self.manifest.get("spec") or {}
        rate = (self.manifest.get("calibration") or {}).get("rate")
        if rate is None or not isinstance(spec.get("service"), dict):
            return spec
        return {**spec, "service": {**spec["service"], "rate": rate}}


@dataclass(frozen=True)
class SkippedRun:
    """A run folder left out of the site (skip_bad_runs) and why: `<file name>: <problem>`."""

    path: Path
    problem: str

    @classmethod
    def of(cls, error: BadRunError) -> SkippedRun:
        return cls(error.run_dir, f"{error.file.name}: {error.problem}")


def _bad_file(path: Path, error: Exception) -> BadRunError:
    """A results reader's refusal of one file of a run (its message starts with the path)."""
    return BadRunError(path, str(error).removeprefix(f"{path}: "))


def _read_manifest(run_dir: Path) -> dict[str, Any]:
    """The run's manifest through the runner's own reader; its refusals become BadRunErrors."""
    try:
        return read_manifest(run_dir)
    except ManifestError as exc:
        raise _bad_file(run_dir / MANIFEST_NAME, exc) from None


def _ref(study: str, folder: Path) -> RunRef:
    m = _read_manifest(folder)
    return RunRef(
        study=study,
        run_id=str(m.get("run_id") or folder.name),
        path=folder,
        status=str(m.get("status") or "incomplete"),
        started=m.get("started"),
        finished=m.get("finished"),
    )


def _latest_name(study_dir: Path) -> str | None:
    """The run id `latest` names: a symlink's target or a text file's first line."""
    latest = study_dir / "latest"
    if latest.is_symlink():
        return Path(str(latest.readlink())).name or None
    if latest.is_file():
        text = latest.read_text(encoding="utf-8").strip()
        return Path(text.splitlines()[0]).name if text else None
    return None


def _load_study(folder: Path, skipped: list[SkippedRun] | None) -> Study | None:
    """The study of one spec folder; None when it has no run to show.

    With `skipped` (a list to fill), a run whose manifest cannot be read is left out and
    recorded there instead of failing, and a study whose `latest` names such a run is left
    out with it (its article would otherwise show another run than the one `latest` names).
    """
    runs = []
    for p in sorted(folder.iterdir()):
        if not p.is_dir() or p.is_symlink() or not (p / MANIFEST_NAME).is_file():
            continue
        try:
            runs.append(_ref(folder.name, p))
        except BadRunError as exc:
            if skipped is None:
                raise
            skipped.append(SkippedRun.of(exc))
    if not runs:
        return None
    runs.sort(key=lambda r: (r.started or "", r.run_id), reverse=True)
    named = _latest_name(folder)
    by_id = {r.path.name: r for r in runs}
    if named is not None:
        if skipped is not None and any(s.path == folder / named for s in skipped):
            return None
        if named not in by_id:
            raise ReportError(
                f"{folder / 'latest'}: names run {named!r}, which has no folder with a "
                "manifest.json; remove the stale `latest` or re-run the study"
            )
        return Study(folder.name, folder, tuple(runs), by_id[named], "latest")
    complete = [r for r in runs if r.status == "complete"]
    if complete:
        return Study(folder.name, folder, tuple(runs), complete[0], "newest complete run")
    return Study(folder.name, folder, tuple(runs), runs[0], "newest run (none is complete)")


def run_at(path: Path) -> RunRef:
    """The run a path names: a run folder, a study's `latest` (link or text file), or a
    study folder (its current run, as the article would choose it).

    A path that names none of these is a ReportError that says what was found there.
    """
    if path.name == "latest" and (path.is_symlink() or path.is_file()):
        named = _latest_name(path.parent)
        if not named:
            raise ReportError(f"{path}: names no run")
        path = path.parent / named
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        folder = path.resolve()
        return _ref(folder.parent.name, folder)
    if path.is_dir():
        study = _load_study(path.resolve(), None)
        if study is not None:
            return study.current
        raise ReportError(f"{path}: not a run folder (no {MANIFEST_NAME}) and holds no runs")
    raise ReportError(f"{path}: no such run folder")


def find_studies(results: Path, *, skipped: list[SkippedRun] | None = None) -> list[Study]:
    """Every study under a results folder, in name order; [] when there is none.

    A run whose manifest cannot be read fails the search, unless `skipped` is given: then it
    is recorded there and left out (see _load_study).
    """
    if not results.is_dir():
        return []
    studies = [_load_study(p, skipped) for p in sorted(results.iterdir()) if p.is_dir()]
    return [s for s in studies if s is not None]


def _rows(path: Path, name: str, required: bool) -> list[dict[str, Any]]:
    try:
        return table_rows(path, name, required=required)
    except TableError as exc:
        raise _bad_file(path, exc) from None


def _requests_digest(
    path: Path,
) -> tuple[dict[tuple[str, int], list[Answer]], dict[str, IdleTraffic]]:
    """The two things the article needs from requests.arrow, without a row per request.

    The percentiles are in the summary already; what only this table holds is the live
    payload each answer reported (the live-payload line) and what the idle phase
    received. A default study has 120,000 requests per allocator, so the table is filtered
    column-wise in Arrow and only the matching rows become Python values.
    """
    if not path.exists():
        return {}, {}
    try:
        table: pa.Table = read_table(path, "requests")
    except TableError as exc:
        raise _bad_file(path, exc) from None
    valid = [pc.is_valid(table[c]) for c in ("live_bytes", "worker", "done_s")]
    live = table.filter(pc.and_(pc.and_(valid[0], valid[1]), valid[2]))
    answers: dict[tuple[str, int], list[Answer]] = {}
    cols = [live[c].to_pylist() for c in ("allocator", "repeat", "done_s", "worker", "live_bytes")]
    for alloc, repeat, done, worker, nbytes in zip(*cols, strict=True):
        answers.setdefault((str(alloc), int(repeat or 0)), []).append(
            (float(done), int(worker), int(nbytes))
        )
    idle_rows = table.filter(pc.equal(table["phase"], "idle"))
    idle: dict[str, list[tuple[str, int | None]]] = {}
    for alloc, endpoint, status in zip(
        *(idle_rows[c].to_pylist() for c in ("allocator", "endpoint", "status")), strict=True
    ):
        idle.setdefault(str(alloc), []).append((str(endpoint), status))
    digest = {
        name: IdleTraffic(
            requests=len(rows),
            failed=sum(1 for _, st in rows if not st or not 200 <= st < 400),
            endpoints=tuple(sorted({e for e, _ in rows})),
        )
        for name, rows in idle.items()
    }
    return answers, digest


def load_run(ref: RunRef) -> Run:
    """Read a run's manifest and the tables the article is computed from.

    requests.arrow is read only for the answers' live payload and the idle traffic
    (see _requests_digest). The control table may be absent when a spec disables the control,
    the restarts table in a run made before recycling existed, the retention table in one made
    before the allocators' statistics were read.
    """
    manifest = _read_manifest(ref.path)
    files = {
        t: ref.path / f"{t}.arrow" for t in DOWNLOAD_ORDER if (ref.path / f"{t}.arrow").is_file()
    }
    answers, idle = _requests_digest(ref.path / "requests.arrow")
    return Run(
        ref=ref,
        manifest=manifest,
        memory=_rows(ref.path / "memory.arrow", "memory", required=True),
        control=_rows(ref.path / "control.arrow", "control", required=False),
        summary=_rows(ref.path / "summary.arrow", "summary", required=True),
        restarts=_rows(ref.path / "restarts.arrow", "restarts", required=False),
        retention=(
            _rows(ref.path / "retention.arrow", "retention", required=False)
            if (ref.path / "retention.arrow").is_file()
            else []
        ),
        stages=(
            _rows(ref.path / "stages.arrow", "stages", required=False)
            if (ref.path / "stages.arrow").is_file()
            else []
        ),
        files=files,
        answers=answers,
        idle=idle,
    )


@dataclass(frozen=True)
class Freshness:
    """Whether a run's data still matches the spec file it was made from."""

    state: Literal["current", "stale", "unknown"]
    spec_file: str | None
    detail: str


def check_freshness(manifest: dict[str, Any], roots: Sequence[Path]) -> Freshness:
    """Compare the manifest's spec hash with the spec file as it is now.

    The spec file is looked up as recorded (absolute, or relative to each root in turn:
    the folder the results folder sits in, then the site's folder), then by its path in the
    project (`spec_file_project`) under each root, so a moved results folder still finds it.
    """
    from bench.spec import SpecError, load_spec

    recorded = manifest.get("spec_file")
    want = manifest.get("spec_sha256")
    if not recorded:
        return Freshness("unknown", None, "the manifest does not name its spec file")
    candidates = [Path(recorded)] if Path(recorded).is_absolute() else [r / recorded for r in roots]
    project = manifest.get("spec_file_project")
    if project:  # the results folder may have moved: the spec as the project names it
        candidates += [r / project for r in roots]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        return Freshness("unknown", recorded, f"the spec file {recorded} no longer exists")
    overrides = [str(o) for o in manifest.get("spec_overrides") or []]
    try:
        now = load_spec(found, overrides).spec_hash
    except SpecError as exc:
        first = str(exc).splitlines()[0]
        return Freshness("unknown", recorded, f"the spec file {recorded} does not load ({first})")
    if want and now != want:
        return Freshness(
            "stale",
            recorded,
            f"the spec file {recorded} changed after this run (spec hash {str(want)[:12]} "
            f"when run, {now[:12]} now)",
        )
    if not want:
        return Freshness("unknown", recorded, "the manifest records no spec hash")
    changed = f" with --set {', '.join(overrides)}" if overrides else ""
    return Freshness(
        "current", recorded, f"the data matches {recorded}{changed} (spec hash {now[:12]})"
    )
