"""The run `--resume` continues, and the refusal to continue one whose spec has changed.

A resumed run keeps the finished allocators' rows and measures the rest; mixed with numbers
measured under another spec (a longer load, another rate) they would compare unlike things,
and nothing in the tables would say so. So `--resume` continues the newest incomplete run made
with this very spec (the same spec hash), and when the newest run of the spec stopped with a
spec that differs from the one given now, it refuses and says what changed, from the spec the
manifest recorded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.results.rundir import find_resumable, runs_newest_first

__all__ = ["SpecChanged", "run_to_resume", "spec_changes"]

#: How many changed keys the refusal lists before "and N more".
SHOWN = 8

_ABSENT = object()


class SpecChanged(UsageError):
    """--resume of a run whose spec differs from the one given now (exit 2)."""


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(not set)"
    text = json.dumps(value, sort_keys=True, separators=(",", ": "))
    return text if len(text) <= 60 else text[:57] + "..."


def spec_changes(old: Any, new: Any, where: str = "") -> list[str]:
    """Each key whose value differs, as `service.load_s was 5, now 20` (dotted paths, lists
    compared whole), in the order of the old spec's keys, then the new keys."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = list(old) + [k for k in new if k not in old]
        found: list[str] = []
        for key in keys:
            path = f"{where}.{key}" if where else str(key)
            found += spec_changes(old.get(key, _ABSENT), new.get(key, _ABSENT), path)
        return found
    if old == new:
        return []
    return [f"{where or 'the spec'} was {_show(old)}, now {_show(new)}"]


def run_to_resume(
    out: Path, *, spec_name: str, spec_hash: str, spec: Mapping[str, Any], spec_path: Path
) -> Path | None:
    """The run folder --resume continues, or None when there is nothing to resume.

    That is the newest incomplete run with this spec hash. Without one, when the newest run of
    the spec is incomplete but was made with another spec, SpecChanged names the folder, the
    spec file and what differs (`spec` is the spec now, as the manifest records it:
    `model_dump(mode="json")`).
    """
    same = find_resumable(out, spec_name, spec_hash)
    newest = next(runs_newest_first(out, spec_name), None)
    if same is not None or newest is None or newest[1].get("status") == "complete":
        return same
    run_dir, manifest = newest
    changes = spec_changes(manifest.get("spec") or {}, dict(spec))
    listed = "; ".join(changes[:SHOWN]) or "the spec hash differs"
    if len(changes) > SHOWN:
        listed += f"; and {len(changes) - SHOWN} more"
    recorded = manifest.get("spec_file_absolute") or manifest.get("spec_file")
    now = spec_path.resolve()
    if recorded is None or Path(str(recorded)) == now:
        source = f"spec file {now}"
    else:
        source = f"it ran with {recorded}, this is {now}"
    raise SpecChanged(
        f"cannot resume {run_dir}: its spec has changed since it ran ({source}): {listed}. "
        "Put the spec back to resume it, or run without --resume to start a new run"
    )
