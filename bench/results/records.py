"""The builders of a run's manifest records (bench.results.manifest holds their types).

Each builder reads one thing (the spec, an allocator, the machine, a finished cell) and
returns the record the manifest keeps of it; the run lifecycle (bench.run.lifecycle) puts them
together and writes them. `now` is the one clock of those records: wall-clock ISO 8601 with
milliseconds (a run's start and end, an allocator's, every cell's line), so a cluster run's
cells and its allocators read on one scale with a local run's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.allocators.registry import Allocator
from bench.measure import machine
from bench.measure.memlimit import limit_bytes
from bench.results.manifest import MANIFEST_FORMAT, AllocatorRecord, CellLine, Manifest
from bench.spec import Spec
from bench.toolinfo import library_versions, tool_record
from service.config import health_path

__all__ = [
    "PROJECT_ROOT",
    "allocator_record",
    "base_manifest",
    "cell_record",
    "confound_record",
    "method_record",
    "now",
    "reclaim_support",
    "spec_file_record",
    "spec_record",
    "wall_clock",
    "workload_record",
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def wall_clock(t: float) -> str:
    """A wall-clock time as ISO 8601 with milliseconds (cells on several hosts interleave)."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def now() -> str:
    """The time now on the manifest's one clock."""
    return wall_clock(time.time())


def allocator_record(alloc: Allocator, *, resolved_here: bool = True) -> AllocatorRecord:
    """An allocator's record before its first repeat. Not `resolved_here` (a cluster run's
    client): what the spec says of it only; its library, checksum and version are the hosts'."""
    here = resolved_here
    return AllocatorRecord.new(
        name=alloc.name,
        kind=alloc.kind,
        base=alloc.base,
        same_as=alloc.same_as,
        description=alloc.description,
        library=str(alloc.library) if here and alloc.library else None,
        expected_library=alloc.expected_library() if here and alloc.available else None,
        sha256=alloc.sha256 if here else None,
        env=alloc.env,
        fix=alloc.fix if here else None,
    )


def spec_file_record(spec_path: Path, project: Path = PROJECT_ROOT) -> dict[str, str | None]:
    """The spec file absolutely and, when it lies in the project, relative to the project: a
    results folder moved to another checkout still finds its spec for the stale-data check."""
    absolute = spec_path.resolve()
    try:
        relative: str | None = str(absolute.relative_to(project))
    except ValueError:
        relative = None
    return {"spec_file_absolute": str(absolute), "spec_file_project": relative}


def workload_record(spec: Spec) -> dict[str, Any] | None:
    """What the service ran and what drove it, when it is not the built-in service's own mix:
    the app (a hosted app: service.hosted) and the request file's mix (None: neither)."""
    s = spec.service
    mix = s.request_mix
    if s.app is None and mix is None:
        return None
    return {
        "app": s.app,
        "interface": s.interface if s.app else None,
        "app_dir": str(s.app_dir) if s.app_dir else None,
        **(mix.record() if mix is not None else {}),
    }


def spec_record(spec: Spec) -> dict[str, Any]:
    """The resolved spec as the manifest stores it, with the request file's digest, so that
    --resume can say it was the traffic that changed."""
    data = spec.model_dump(mode="json")
    if (mix := spec.service.request_mix) is not None:
        data["service"]["requests_sha256"] = mix.sha256
    return data


def base_manifest(spec: Spec, spec_path: Path, run_dir: Path) -> Manifest:
    """A new run's manifest: the spec, the tool, the host; nothing measured yet."""
    return Manifest.new(
        format=MANIFEST_FORMAT,
        tool=tool_record(),
        run_id=run_dir.name,
        spec_name=spec.name,
        spec_file=str(spec_path),
        **spec_file_record(spec_path),
        spec_sha256=spec.spec_hash,
        spec_overrides=list(spec.overrides),  # the hash above includes them
        spec=spec_record(spec),
        workload=workload_record(spec),
        status="running",
        started=now(),
        host=machine.host_info(),
        libraries=library_versions(),  # held against constraints.txt
    )


def method_record(spec: Spec, *, can_reclaim: bool, reclaim_how: str) -> dict[str, Any]:
    """The choices of method a reader needs to read the numbers (the article quotes them)."""
    s = spec.service
    return {
        "idle_rate": s.idle_rate,
        "idle_traffic": (
            f"GET {health_path(s.app)} at {s.idle_rate:g} "
            f"request{'' if s.idle_rate == 1 else 's'}/s"
            + (f", each making {s.idle_probe.describe()}" if s.idle_probe else "")
            if s.idle_rate > 0
            else "none (a silent idle: nothing calls the allocator)"
        ),
        # the probe's own allocator calls (service.idlework), None for a bare probe
        "idle_probe": s.idle_probe.model_dump() if s.idle_probe else None,
        "idle_probes": (
            "rotated over one kept-alive connection per worker" if s.idle_rate > 0 else None
        ),
        "settle_window_s": s.settle_window_s,
        "reclaim": {"possible": can_reclaim, "how": reclaim_how},
        "memory_sampled_from": "service launch",
        "latency_failures": f"failed requests counted at {s.request_timeout_s:g} s or more",
        "live_set_fill_s": s.fill_s,
        "memory_limit_bytes": limit_bytes(s.memory_limit_mb),  # the service cgroup's, or None
        "order": "rotated by repeat"
        + (
            "; the A/A duplicate at a place drawn from the churn seed and the round, never "
            "beside its twin"
            if spec.aa_pair and spec.aa_again
            else ""
        ),
    }


def confound_record(spec: Spec, *, thp: dict[str, Any], cg: Any, cores: Any) -> dict[str, Any]:
    """The confounds this machine holds for a run (or a cluster cell), as the manifest keeps
    them: THP (bench.measure.machine.thp_disabled's record), swap, governor, memory groups,
    pinning, the Python allocator, root, and the CPU pressure at the start."""
    return {
        "thp": thp,
        "swap_bytes": machine.swap_bytes(),
        "governor": machine.governor(),
        "cgroup_mode": cg.mode if cg else "none",
        "cgroup": cg.reason if cg else "procfs (spec machine.cgroup: none)",
        "pinning": cores.as_record(),
        "python_malloc": spec.service.python_malloc,
        "page_cache_dropped": False,
        "root": machine.is_root(),
        "cpu_pressure": {"avg10_start": getattr(machine.cpu_pressure(), "avg10", None)},
    }


def reclaim_support(mode: str | None) -> dict[str, Any]:
    """Whether memory groups of this `mode` (v2, v1, none) can force a reclaim, and how."""
    if mode == "v2":
        return {"can_reclaim": True, "reclaim_how": "cgroup v2 memory.reclaim"}
    if mode == "v1":
        return {
            "can_reclaim": False,
            "reclaim_how": "none: cgroup v1 has no reclaim that works while tasks run",
        }
    return {"can_reclaim": False, "reclaim_how": "none: no memory cgroup (procfs sampling)"}


def cell_record(result: Any, *, attempt: int = 1, worker: str | None = None) -> CellLine:
    """The manifest's line for one cell (a bench.experiments.cell.CellResult): where and when
    it ran, how it ended, and the traceback of a bug that failed it."""
    line = CellLine.new(
        **result.cell.as_record(),
        host=result.host,
        worker=worker,
        attempt=attempt,
        status=result.status,
        reason=result.reason,
        started=wall_clock(result.started),
        finished=wall_clock(result.finished),
        started_unix=round(result.started, 3),
        finished_unix=round(result.finished, 3),
    )
    if getattr(result, "traceback", None):
        line.traceback = result.traceback
    return line
