"""A memory limit on a measured program's cgroup, and the kernel's own count of what it did.

An operator's first answer to a service that grows is a memory limit. Set on the cgroup the
service runs in, it caps everything the cgroup is charged: anonymous memory (what the study
samples), page cache (the interpreter's and the libraries' files, read after the runner
dropped the caches) and kernel memory (page tables, sockets). The kernel reclaims page cache
first; when that is not enough it kills the largest process of the group, a worker. So the
limit is compared with the group's charged peak, of which anonymous memory is the largest
part, never with anonymous memory alone.

- cgroup v2: the limit is `memory.max`; `memory.swap.max` is set to 0 where it exists, so swap
  cannot stretch it. Counters: `memory.events` (`max`: times the limit was hit, `oom`,
  `oom_kill`), `memory.current`, `memory.peak`.
- cgroup v1: the limit is `memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` (memory
  plus swap) the same when the machine has swap; without swap memsw is left unset (setting it
  then only moves the refusals onto a counter some kernels do not count). Counters:
  `memory.failcnt` (charges refused at the limit), `memory.oom_control` (`under_oom`, and
  `oom_kill` on kernels since 4.13), `memory.usage_in_bytes`, `memory.max_usage_in_bytes`.

Parsing is pure (`counters_v1`, `counters_v2` over the files' text) so both formats are
tested on any machine; `read_counters` reads a live group.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.measure.groups import CgroupMode

__all__ = [
    "LimitCounters",
    "LimitUnavailable",
    "apply_limit",
    "counters_v1",
    "counters_v2",
    "limit_bytes",
    "parse_keyed",
    "read_counters",
    "unavailable_reason",
]

#: Files each mode's counters come from (read_counters reads those that exist).
V1_FILES = (
    "memory.failcnt",
    "memory.memsw.failcnt",
    "memory.oom_control",
    "memory.usage_in_bytes",
    "memory.max_usage_in_bytes",
    "memory.memsw.limit_in_bytes",
)
V2_FILES = ("memory.events", "memory.current", "memory.peak")


class LimitUnavailable(OSError):
    """The limit cannot be set here; str() says why in one line."""


def limit_bytes(limit_mb: float | None) -> int | None:
    """The spec's limit in bytes (MB of 10^6 bytes, the study's unit); None for none."""
    return None if limit_mb is None else int(round(limit_mb * 1_000_000))


def unavailable_reason(mode: CgroupMode, why: str) -> str | None:
    """Why a spec with a limit cannot run on this machine (None: it can)."""
    if mode in ("v1", "v2"):
        return None
    return (
        "service.memory_limit_mb needs a writable memory cgroup, and this machine has none "
        f"({why}); run as root, or drop the limit"
    )


def parse_keyed(text: str) -> dict[str, int]:
    """A flat keyed file (`key value` per line, as memory.events and memory.oom_control are)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        value = value.strip()
        if key and value.lstrip("-").isdigit():
            out[key] = int(value)
    return out


def _int(text: str | None) -> int | None:
    """A single-number file; None when absent or not a number ("max" on v2)."""
    if text is None:
        return None
    value = text.strip()
    return int(value) if value.lstrip("-").isdigit() else None


@dataclass(frozen=True)
class LimitCounters:
    """The kernel's counters of one memory group at one moment (None: this kernel has none)."""

    #: charges that met the limit: v2 memory.events `max`, v1 memory.failcnt (plus the
    #: memsw failcnt when memory+swap is bounded too)
    limit_hits: int | None
    #: processes the OOM killer killed in the group: v2 `oom_kill`, v1 oom_control `oom_kill`
    oom_kills: int | None
    #: times the group ran out with nothing left to reclaim (v2 `oom`; v1 has no such count)
    ooms: int | None = None
    #: v1: the group is waiting for memory right now (oom_control `under_oom`)
    under_oom: bool | None = None
    #: what the group is charged now (anon + page cache + kernel), bytes
    usage_bytes: int | None = None
    #: the highest charge since the group was made, bytes (v2 memory.peak, v1 max_usage)
    peak_bytes: int | None = None

    def as_record(self) -> dict[str, Any]:
        return asdict(self)


def counters_v2(files: Mapping[str, str]) -> LimitCounters:
    """Counters from cgroup v2 files (name → text; an absent file is an absent key)."""
    events = parse_keyed(files.get("memory.events", ""))
    return LimitCounters(
        limit_hits=events.get("max"),
        oom_kills=events.get("oom_kill"),
        ooms=events.get("oom"),
        usage_bytes=_int(files.get("memory.current")),
        peak_bytes=_int(files.get("memory.peak")),
    )


def counters_v1(files: Mapping[str, str]) -> LimitCounters:
    """Counters from cgroup v1 files (name → text; an absent file is an absent key).

    The memsw failcnt counts only when memory+swap is bounded (its limit is not the
    unlimited value): a refusal there is the same limit met.
    """
    control = parse_keyed(files.get("memory.oom_control", ""))
    hits = _int(files.get("memory.failcnt"))
    memsw_limit = _int(files.get("memory.memsw.limit_in_bytes"))
    memsw_hits = _int(files.get("memory.memsw.failcnt"))
    if hits is not None and memsw_hits and memsw_limit is not None and memsw_limit < 1 << 62:
        hits += memsw_hits
    return LimitCounters(
        limit_hits=hits,
        oom_kills=control.get("oom_kill"),
        under_oom=bool(control["under_oom"]) if "under_oom" in control else None,
        usage_bytes=_int(files.get("memory.usage_in_bytes")),
        peak_bytes=_int(files.get("memory.max_usage_in_bytes")),
    )


def _read(path: Path, names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = (path / name).read_text()
        except OSError:
            continue
    return out


def read_counters(mode: CgroupMode, path: Path | None) -> LimitCounters | None:
    """The counters of a live group (None without a cgroup, or once it is gone)."""
    if path is None or mode not in ("v1", "v2"):
        return None
    if mode == "v2":
        files = _read(path, V2_FILES)
        return counters_v2(files) if files else None
    files = _read(path, V1_FILES)
    return counters_v1(files) if files else None


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise LimitUnavailable(f"cannot write {path}: {exc.strerror or exc}") from None


def apply_limit(
    mode: CgroupMode,
    path: Path | None,
    limit: int,
    *,
    swap_bytes: Callable[[], int | None],
) -> dict[str, Any]:
    """Set `limit` bytes on an empty group, before anything joins it; what was set, as read back.

    `swap_bytes` tells how much swap the machine has (v1 bounds memory+swap only when there
    is some). Raises LimitUnavailable with one line when the group cannot hold a limit.
    """
    if path is None or mode not in ("v1", "v2"):
        raise LimitUnavailable(
            "service.memory_limit_mb needs a memory cgroup, and this repeat has none (procfs "
            "sampling)"
        )
    record: dict[str, Any] = {"limit_bytes": limit, "mode": mode}
    if mode == "v2":
        _write(path / "memory.max", str(limit))
        record["set"] = {"memory.max": _int((path / "memory.max").read_text())}
        swap_max = path / "memory.swap.max"
        if swap_max.exists():
            _write(swap_max, "0")
            record["set"]["memory.swap.max"] = 0
            record["swap"] = "not available to the service (memory.swap.max = 0)"
        else:
            record["swap"] = "not bounded: this kernel has no memory.swap.max"
        record["oom_group"] = _int(_read(path, ("memory.oom.group",)).get("memory.oom.group"))
        return record
    _write(path / "memory.limit_in_bytes", str(limit))
    record["set"] = {"memory.limit_in_bytes": _int((path / "memory.limit_in_bytes").read_text())}
    swap = swap_bytes()
    memsw = path / "memory.memsw.limit_in_bytes"
    if not swap:
        record["swap"] = "off: the machine has no swap (memory.memsw.limit_in_bytes left unset)"
    elif memsw.exists():
        _write(memsw, str(limit))
        record["set"]["memory.memsw.limit_in_bytes"] = _int(memsw.read_text())
        record["swap"] = "bounded with memory: memory.memsw.limit_in_bytes = the limit"
    else:
        record["swap"] = "not bounded: swap is on but the kernel accounts no memsw"
    return record
