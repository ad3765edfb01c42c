"""Whether a run measured the service stack the project pins: its versions against the lock.

FastAPI, Starlette, uvicorn and pydantic are part of what a study measures, so two runs on
different releases measure different service code. `make setup` installs the exact versions
of constraints.txt; a run records the versions it had (the manifest's `libraries`, or each
cluster host's fingerprint), and the article's provenance says whether they match the lock
found beside the site's mkdocs.yml, naming every package that differs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["LOCK_FILE", "LockCheck", "check_lock", "read_lock"]

#: The lock file's name, at the project's root (scripts/lock.sh writes it).
LOCK_FILE = "constraints.txt"

_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")


def _norm(name: str) -> str:
    """A distribution name as PEP 503 compares them (case, `_` and `.` folded to `-`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """`name==version` lines of a constraints file; anything else (comments) is ignored."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if m := _PIN.match(line):
            pins[_norm(m.group(1))] = m.group(2)
    return pins


@dataclass(frozen=True)
class LockCheck:
    state: Literal["match", "differ", "not recorded", "no lock"]
    detail: str


def _recorded(manifest: dict[str, Any]) -> dict[str, str]:
    """The versions a run recorded: its own, or (a cluster run) the first host's."""
    libs = manifest.get("libraries")
    if not libs:
        hosts = manifest.get("hosts") or {}
        first = next(iter(hosts.values()), {}) if isinstance(hosts, dict) else {}
        libs = first.get("libraries") if isinstance(first, dict) else None
    return {_norm(k): str(v) for k, v in (libs or {}).items() if v and _norm(k) != "allocstudy"}


def check_lock(manifest: dict[str, Any], roots: Sequence[Path]) -> LockCheck:
    """The run's recorded versions against the first constraints.txt found under `roots`."""
    recorded = _recorded(manifest)
    if not recorded:
        return LockCheck(
            "not recorded", "not recorded by this run (made before runs recorded them)"
        )
    lock_path = next((r / LOCK_FILE for r in roots if (r / LOCK_FILE).is_file()), None)
    if lock_path is None:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(recorded.items()))
        return LockCheck("no lock", f"{listed} (no {LOCK_FILE} to hold them against)")
    pins = read_lock(lock_path)
    differ = [
        f"{name} {have} (the lock: {pins.get(name, 'not pinned')})"
        for name, have in sorted(recorded.items())
        if pins.get(name) != have
    ]
    if differ:
        return LockCheck("differ", f"differ from {LOCK_FILE}: {'; '.join(differ)}")
    shown = ", ".join(
        f"{k} {recorded[k]}"
        for k in ("fastapi", "starlette", "uvicorn", "pydantic")
        if k in recorded
    )
    return LockCheck("match", f"match {LOCK_FILE} ({len(recorded)} packages: {shown}, ...)")
