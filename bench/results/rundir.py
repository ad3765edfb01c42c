"""The run folder (docs/guide/data-format.md): its id, its manifest, its tables, and `latest`.

A run folder is written only by the run that made it. Every file is written whole under a
temporary name and renamed; `latest` moves only when a run completes, so a reader of
`results/<spec>/latest` always gets a complete run.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.results.tables import SCHEMAS, atomic_write_bytes, read_table, to_table, write_table

__all__ = [
    "MANIFEST_FORMAT",
    "ManifestError",
    "find_resumable",
    "new_run_dir",
    "read_manifest",
    "set_latest",
    "write_manifest",
    "write_tables",
    "read_rows",
]

MANIFEST_FORMAT = "2"
TABLES = ("memory", "requests", "control", "summary")


class ManifestError(Exception):
    """A manifest that is missing, unreadable or of an unknown format."""


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


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> None:
    data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode() + b"\n"
    atomic_write_bytes(run_dir / "manifest.json", data)


def read_manifest(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: unreadable ({exc})") from None
    if str(manifest.get("format")) != MANIFEST_FORMAT:
        raise ManifestError(
            f"{path}: manifest format {manifest.get('format')!r} is not the supported "
            f"{MANIFEST_FORMAT!r}"
        )
    return manifest


def write_tables(run_dir: Path, rows: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """Write every table of the data contract (empty ones too, so readers find all four)."""
    for name in TABLES:
        write_table(run_dir / f"{name}.arrow", name, to_table(name, rows.get(name, [])))


def read_rows(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of a run's tables (for --resume); missing tables read as empty."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in SCHEMAS:
        path = run_dir / f"{name}.arrow"
        out[name] = read_table(path, name).to_pylist() if path.exists() else []
    return out


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
