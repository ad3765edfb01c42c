"""The generator's live progress: a small JSON file it rewrites once a second, the runner reads.

Written by the generator process (bench.load.generator), read by the runner's handle
(bench.load.handle) for the live display; disposable, so it is replaced without fsync.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from bench.load.record import SUMMARY_VERSION

__all__ = ["LoadProgress", "read_progress", "write_progress"]


class LoadProgress(BaseModel):
    """The small JSON the generator rewrites once a second for the runner's live display."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: int = SUMMARY_VERSION
    t_s: float  # since origin
    phase: str | None
    due: int
    sent: int
    done: int
    errors: int
    in_flight: int
    rate_rps: float  # responses in the last interval, per second
    p99_ms: float | None  # latency from intended time, all responses so far (+-2.3%)
    late_p99_ms: float | None  # send lateness so far (+-2.3%)
    finished: bool = False


def write_progress(path: Path, progress: LoadProgress) -> None:
    """Replace the progress file atomically; no fsync, a progress file is disposable."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(progress.model_dump_json(), encoding="utf-8")
    os.replace(tmp, path)


def read_progress(path: Path) -> LoadProgress | None:
    """The latest progress a generator wrote, or None before its first write."""
    try:
        return LoadProgress.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None
