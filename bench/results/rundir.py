"""The run folder (docs/guide/data-format.md): its id, its tables, finding it again, `latest`.

A run folder is written only by the run that made it. Every file is written whole under a
temporary name and renamed; `latest` moves only when a run completes, so a reader of
`results/<spec>/latest` always gets a complete run. The manifest's own format lives in
bench.results.manifest, the tables' in bench.results.tables.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.results.manifest import ManifestError, read_manifest
from bench.results.tables import TABLES, table_rows, to_table, write_table

__all__ = [
    "find_resumable",
    "new_run_dir",
    "read_rows",
    "set_latest",
    "write_tables",
]


def new_run_dir(out: Path, spec_name: str) -> Path:
    """A fresh, empty run folder results/<spec>/<UTC timestamp>[-suffix]."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    parent = out / spec_name
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / stamp
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path = parent / f"{stamp}-{secrets.token_hex(2)}"


def write_tables(run_dir: Path, rows: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """Write every table of the data contract (empty ones too, so readers find all four)."""
    for name in TABLES:
        write_table(run_dir / f"{name}.arrow", name, to_table(name, rows.get(name, [])))


def read_rows(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of a run's tables (for --resume); missing tables read as empty."""
    return {name: table_rows(run_dir / f"{name}.arrow", name, required=False) for name in TABLES}


def set_latest(run_dir: Path) -> None:
    """Point results/<spec>/latest at run_dir (a relative symlink, replaced atomically)."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def find_resumable(out: Path, spec_name: str, spec_hash: str) -> Path | None:
    """The newest incomplete run of this spec with the same spec hash, if any."""
    parent = out / spec_name
    if not parent.is_dir():
        return None
    for run_dir in sorted(
        (p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()), reverse=True
    ):
        try:
            manifest = read_manifest(run_dir)
        except ManifestError:
            continue
        if manifest.get("status") != "complete" and manifest.get("spec_sha256") == spec_hash:
            return run_dir
    return None
