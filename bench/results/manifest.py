"""The manifest of a run (docs/guide/data-format.md): its format version, one writer, one reader.

The runner writes manifest.json (and rewrites it after every repeat); the runner's --resume and
the report read it back through `read_manifest`, so both refuse the same files with the same
words: a missing or unreadable file, or a format this version does not understand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import UserError
from bench.results.tables import atomic_write_bytes

__all__ = ["MANIFEST_FORMAT", "MANIFEST_NAME", "ManifestError", "read_manifest", "write_manifest"]

#: Bumped whenever a key changes meaning or a required key is removed.
MANIFEST_FORMAT = "2"
#: The manifest's file name inside a run folder.
MANIFEST_NAME = "manifest.json"


class ManifestError(UserError):
    """A manifest that is missing, unreadable or of an unknown format; str() says which."""


def write_manifest(run_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Write the manifest whole under a temporary name and rename it into place."""
    data = json.dumps(manifest, indent=2, sort_keys=False, default=str).encode() + b"\n"
    atomic_write_bytes(run_dir / MANIFEST_NAME, data)


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
