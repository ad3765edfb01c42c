"""The run folder (docs/guide/data-format.md): its id, its tables, finding it again, `latest`.

A run folder is written only by the run that made it. Every file is written whole under a
temporary name and renamed; `latest` moves only when a run completes, so a reader of
`results/<spec>/latest` always gets a complete run. A folder that cannot be written
(read-only, full, not a folder) is one RunFolderError naming it and the problem: the run
cannot go on, and a traceback would say less. The manifest's own format lives in
bench.results.manifest, the tables' in bench.results.tables.
"""

from __future__ import annotations

import errno
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.errors import EXIT_CANNOT_RUN, UserError
from bench.results.manifest import Manifest, ManifestError, read_manifest, write_manifest
from bench.results.tables import (
    TABLES,
    WRITTEN_WHEN_FILLED,
    table_rows,
    to_table,
    write_table,
)

__all__ = [
    "RunFolderError",
    "check_writable",
    "find_resumable",
    "runs_newest_first",
    "new_run_dir",
    "read_rows",
    "save_run",
    "set_latest",
    "write_tables",
    "writing",
]


class RunFolderError(UserError):
    """The results folder cannot be written (read-only, full, not a folder): exit 1."""

    exit_code = EXIT_CANNOT_RUN


@contextmanager
def writing(folder: Path, consequence: str = "") -> Iterator[None]:
    """Turn an OSError while writing into `folder` into one RunFolderError that names it."""
    try:
        yield
    except OSError as exc:
        text = f"cannot write the results folder {folder}: {exc.strerror or exc}"
        raise RunFolderError(text + (f"; {consequence}" if consequence else "")) from None


def check_writable(folder: Path) -> None:
    """RunFolderError now when `folder` could not be made or written, creating nothing.

    Asked before the run waits for the machine or measures anything: a read-only folder found
    after a wait for another run, or after the first allocator, would waste both. The nearest
    folder that exists on the path decides; a full disk shows only when written to.
    """
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        problem = errno.ENOTDIR
    elif os.access(probe, os.W_OK | os.X_OK):
        return
    elif os.statvfs(probe).f_flag & os.ST_RDONLY:
        problem = errno.EROFS
    else:
        problem = errno.EACCES
    raise RunFolderError(f"cannot write the results folder {folder}: {os.strerror(problem)}")


def new_run_dir(out: Path, spec_name: str) -> Path:
    """A fresh, empty run folder results/<spec>/<UTC timestamp>[-suffix]."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    parent = out / spec_name
    with writing(parent):
        parent.mkdir(parents=True, exist_ok=True)
        path = parent / stamp
        while True:
            try:
                path.mkdir()
                return path
            except FileExistsError:
                path = parent / f"{stamp}-{secrets.token_hex(2)}"


def save_run(
    run_dir: Path,
    rows: Mapping[str, Iterable[Mapping[str, Any]]],
    manifest: Manifest | Mapping[str, Any],
) -> None:
    """Write the tables, then the manifest (each file whole); RunFolderError if it cannot.

    The files already there stay whole: each is replaced by a rename or not at all, so a run
    stopped here keeps what it wrote last, which --resume continues from.
    """
    with writing(
        run_dir,
        "the run stopped; what it wrote before is kept (--resume continues it once the "
        "folder can be written)",
    ):
        write_tables(run_dir, rows)
        write_manifest(run_dir, manifest)


def write_tables(run_dir: Path, rows: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """Write every table of the data contract (empty ones too, so readers find them all),
    but a table WRITTEN_WHEN_FILLED only with rows (its file removed when it has none)."""
    for name in TABLES:
        path = run_dir / f"{name}.arrow"
        table = to_table(name, rows.get(name, []))
        if name in WRITTEN_WHEN_FILLED and table.num_rows == 0:
            path.unlink(missing_ok=True)
            continue
        write_table(path, name, table)


def read_rows(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of a run's tables (for --resume); missing tables read as empty."""
    return {name: table_rows(run_dir / f"{name}.arrow", name, required=False) for name in TABLES}


def set_latest(run_dir: Path) -> None:
    """Point results/<spec>/latest at run_dir (a relative symlink, replaced atomically)."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    with writing(run_dir.parent):
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name)
        try:
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise


def runs_newest_first(out: Path, spec_name: str) -> Iterator[tuple[Path, dict[str, Any]]]:
    """Every run folder of the spec with a readable manifest, newest first, with it."""
    parent = out / spec_name
    if not parent.is_dir():
        return
    for run_dir in sorted(
        (p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True
    ):
        try:
            yield run_dir, read_manifest(run_dir)
        except ManifestError:
            continue


def find_resumable(out: Path, spec_name: str, spec_hash: str) -> Path | None:
    """The newest incomplete run of this spec with the same spec hash, if any."""
    for run_dir, manifest in runs_newest_first(out, spec_name):
        if manifest.get("status") != "complete" and manifest.get("spec_sha256") == spec_hash:
            return run_dir
    return None
