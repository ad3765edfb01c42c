"""Anonymous memory of a process tree: a fresh memory cgroup (v2 or v1), or procfs.

Anonymous memory is the part the allocator governs; totals like memory.current mix in page
cache. Each backend answers `anon_bytes()` for everything the measured program started:
- cgroup v2: `anon` of memory.stat; reclaim through memory.reclaim.
- cgroup v1: `total_rss` of memory.stat (v1's name for anonymous memory); v1 has no reclaim
  that works while tasks run, which is recorded as such.
- procfs: the sum of Pss_Anon from /proc/PID/smaps_rollup over the tree (summing Anonymous
  would count pages shared after fork once per process).
A process must join its cgroup before it allocates, so the launchers write the child's pid
into `procs_file` before exec.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from bench.measure import journal
from bench.measure.journal import remove_cgroup  # a cgroup is removed as the journal undoes one
from service.process.memory import anon_bytes
from service.process.tree import process_tree

__all__ = [
    "CgroupMode",
    "MemoryGroup",
    "ProcfsGroup",
    "cgroup_support",
    "create_group",
    "pss_anon",
    "process_tree",
    "remove_cgroup",
]

CgroupMode = Literal["v2", "v1", "none"]
PREFIX = "allocstudy-"


class MemoryGroup(Protocol):
    mode: CgroupMode
    path: Path | None

    @property
    def procs_file(self) -> Path | None: ...

    def anon_bytes(self) -> int: ...

    def pids(self) -> list[int]: ...

    def reclaim(self) -> str: ...

    def reset_peak(self) -> str | None: ...

    @property
    def can_reclaim(self) -> bool: ...

    def close(self) -> None: ...


def _mounts() -> list[tuple[str, str, str]]:
    out = []
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            dev, mnt, fstype, opts, *_ = line.split()
            out.append((mnt, fstype, opts))
    except OSError:
        pass
    return out


def _own_cgroup(controller: str | None) -> str:
    """This process's cgroup path for a v1 controller, or the v2 path when controller is None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return "/"
    for line in lines:
        _id, ctrls, path = line.split(":", 2)
        if controller is None and _id == "0" and ctrls == "":
            return path
        if controller is not None and controller in ctrls.split(","):
            return path
    return "/"


@dataclass(frozen=True)
class CgroupSupport:
    mode: CgroupMode
    parent: Path | None
    reason: str


def _v2_parent() -> Path | None:
    for mnt, fstype, _ in _mounts():
        if fstype != "cgroup2":
            continue
        root = Path(mnt)
        controllers = (
            (root / "cgroup.controllers").read_text().split()
            if (root / "cgroup.controllers").exists()
            else []
        )
        if "memory" not in controllers:
            continue
        own = root / _own_cgroup(None).lstrip("/")
        for parent in (own.parent, root):
            ctl = parent / "cgroup.subtree_control"
            try:
                if "memory" not in ctl.read_text().split():
                    ctl.write_text("+memory")
                if os.access(parent, os.W_OK):
                    return parent
            except OSError:
                continue
    return None


def _v1_parent() -> Path | None:
    for mnt, fstype, opts in _mounts():
        if fstype == "cgroup" and "memory" in opts.split(","):
            parent = Path(mnt) / _own_cgroup("memory").lstrip("/")
            if (parent / "memory.stat").exists() and os.access(parent, os.W_OK):
                return parent
    return None


def cgroup_support() -> CgroupSupport:
    """Which memory accounting this machine offers a study, and why not a better one."""
    if (parent := _v2_parent()) is not None:
        return CgroupSupport("v2", parent, "cgroup v2 with the memory controller")
    if (parent := _v1_parent()) is not None:
        return CgroupSupport("v1", parent, "cgroup v1 memory controller (v2 has no memory here)")
    why = "no writable memory cgroup (run as root, or delegate a v2 subtree with memory)"
    return CgroupSupport("none", None, f"procfs fallback: {why}")


def _stat(path: Path) -> dict[str, int]:
    stats: dict[str, int] = {}
    for line in (path / "memory.stat").read_text().splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            stats[key] = int(value)
    return stats


class _Cgroup:
    """A fresh child cgroup, removed on close after every task in it is gone."""

    mode: CgroupMode
    anon_key: str
    #: the file of the kernel's high-water mark of the charge, and the text that restarts it
    peak_file: tuple[str, str]

    def __init__(self, parent: Path, label: str):
        # the creator's pid first: on a machine shared by several runs, whose cgroup this is
        # (and whether its run is gone) can be told from its name alone
        name = f"{PREFIX}{os.getpid()}-{label}-{uuid.uuid4().hex[:8]}"
        self.path: Path | None = parent / name
        journal.add("cgroup", str(self.path))  # a killed run's cgroup is removed later
        self.path.mkdir()

    @property
    def procs_file(self) -> Path | None:
        return self.path / "cgroup.procs" if self.path else None

    def anon_bytes(self) -> int:
        assert self.path is not None
        return _stat(self.path)[self.anon_key]

    def pids(self) -> list[int]:
        if self.path is None:
            return []
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def reclaim(self) -> str:
        return "not available"

    @property
    def can_reclaim(self) -> bool:
        """Whether reclaim() forces anything out (only cgroup v2's memory.reclaim does)."""
        return False

    def close(self) -> None:
        """Kill anything still inside, then remove the cgroup (retrying while tasks exit)."""
        if self.path is None:
            return
        remove_cgroup(self.path)
        journal.remove("cgroup", str(self.path))
        self.path = None

    def reset_peak(self) -> str | None:
        """Restart the kernel's high-water mark of the charge; the file that was reset, or
        None where this kernel cannot (v2's memory.peak takes a write from Linux 6.12 on)."""
        assert self.path is not None
        name, text = self.peak_file
        try:
            (self.path / name).write_text(text)
        except OSError:
            return None
        return name


class CgroupV2(_Cgroup):
    mode: CgroupMode = "v2"
    anon_key = "anon"

    @property
    def can_reclaim(self) -> bool:
        return self.path is not None and (self.path / "memory.reclaim").exists()

    #: the high-water mark of the charge and what restarts it (a write from Linux 6.12 on)
    peak_file = ("memory.peak", "reset\n")

    def reclaim(self) -> str:
        assert self.path is not None
        before = self.anon_bytes()
        try:
            (self.path / "memory.reclaim").write_text(f"{max(before, 4096)}")
        except OSError as exc:  # EAGAIN: could not reclaim all it was asked for
            return f"memory.reclaim: {exc.strerror or exc}"
        return "memory.reclaim"


class CgroupV1(_Cgroup):
    mode: CgroupMode = "v1"
    anon_key = "total_rss"

    def reclaim(self) -> str:
        return "none: cgroup v1 offers no reclaim while tasks run (force_empty needs none)"

    peak_file = ("memory.max_usage_in_bytes", "0\n")  # writing 0 restarts the mark


def pss_anon(pid: int) -> int:
    """Pss_Anon of one process in bytes (service.process.memory reads it), 0 when it is gone."""
    try:
        return anon_bytes(pid)
    except OSError:
        return 0


class ProcfsGroup:
    """No cgroup: sum Pss_Anon over the tree of a root pid set once the program started."""

    mode: CgroupMode = "none"
    path: Path | None = None

    def reset_peak(self) -> str | None:
        return None  # no group, no kernel high-water mark

    def __init__(self) -> None:
        self.root_pid: int | None = None

    @property
    def procs_file(self) -> Path | None:
        return None

    def pids(self) -> list[int]:
        return process_tree(self.root_pid) if self.root_pid else []

    def anon_bytes(self) -> int:
        return sum(pss_anon(pid) for pid in self.pids())

    def reclaim(self) -> str:
        return "none: no cgroup (procfs fallback)"

    @property
    def can_reclaim(self) -> bool:
        return False

    def close(self) -> None:
        self.root_pid = None


def create_group(label: str, *, mode: Literal["auto", "none"] = "auto") -> MemoryGroup:
    """A fresh, empty memory group for one measured program."""
    if mode == "auto":
        support = cgroup_support()
        if support.mode == "v2" and support.parent is not None:
            return CgroupV2(support.parent, label)
        if support.mode == "v1" and support.parent is not None:
            return CgroupV1(support.parent, label)
    return ProcfsGroup()
