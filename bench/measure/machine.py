"""The machine a study runs on: host facts and the confounds the method holds constant.

Everything here reads (or, when asked, sets) kernel knobs through /proc and /sys. Each
reader returns None or a plain value instead of raising, because a missing knob on some
machine is a fact to record, not an error. `MachineMeter` accounts one measurement: the CPU
pressure over it and the CPU other processes used (the disturbance the runner flags).
"""

from __future__ import annotations

import os
import platform
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.measure import journal

__all__ = [
    "CpuAccount",
    "CpuPressure",
    "MachineMeter",
    "cpu_busy_s",
    "own_cpu_s",
    "cpu_pressure",
    "drop_caches",
    "governor",
    "host_info",
    "is_root",
    "swap_bytes",
    "thp_disabled",
    "thp_mode",
    "thp_writable",
]

THP_ENABLED = Path("/sys/kernel/mm/transparent_hugepage/enabled")
PRESSURE_CPU = Path("/proc/pressure/cpu")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def is_root() -> bool:
    return os.geteuid() == 0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cpu_model() -> str:
    for line in (_read(Path("/proc/cpuinfo")) or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _meminfo(key: str) -> int | None:
    for line in (_read(Path("/proc/meminfo")) or "").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def host_info() -> dict[str, object]:
    """Who ran the study: CPU, cores, memory, kernel, C library, Python."""
    glibc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": sorted(os.sched_getaffinity(0)),
        "memory_bytes": _meminfo("MemTotal"),
        "kernel": platform.release(),
        "glibc": glibc.split()[-1] if glibc else None,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def thp_mode() -> str | None:
    """The bracketed transparent-huge-pages mode (always, madvise, never), or None."""
    text = _read(THP_ENABLED)
    if text is None:
        return None
    for word in text.split():
        if word.startswith("["):
            return word.strip("[]")
    return text


def thp_writable() -> bool:
    return THP_ENABLED.exists() and os.access(THP_ENABLED, os.W_OK)


@contextmanager
def thp_disabled(enabled: bool = True) -> Iterator[dict[str, object]]:
    """Turn THP off for the duration where the machine allows it, and restore it after.

    Yields the record of what happened ({before, during, restored, writable}); the record is
    completed when the block exits.
    """
    before = thp_mode()
    record: dict[str, object] = {
        "before": before,
        "during": before,
        "writable": thp_writable(),
        "restored": None,
    }
    changed = False
    if enabled and before not in (None, "never") and thp_writable():
        try:
            journal.add("setting", str(THP_ENABLED), before)  # a killed run is undone later
            THP_ENABLED.write_text("never")
            changed = True
            record["during"] = thp_mode()
        except OSError as exc:
            record["error"] = str(exc)
    try:
        yield record
    finally:
        if changed and before is not None:
            try:
                THP_ENABLED.write_text(before)
                record["restored"] = thp_mode() == before
                journal.remove("setting", str(THP_ENABLED))
            except OSError as exc:
                record["restored"] = False
                record["error"] = str(exc)


def swap_bytes() -> int | None:
    return _meminfo("SwapTotal")


def governor() -> str | None:
    """The CPU frequency governor, or None where the machine has no cpufreq (VMs)."""
    return _read(GOVERNOR)


@dataclass(frozen=True)
class CpuPressure:
    """/proc/pressure/cpu 'some': share of time at least one task waited for a CPU."""

    avg10: float
    avg60: float
    total_us: int

    @staticmethod
    def stalled_pct(start: CpuPressure, end: CpuPressure, wall_s: float) -> float:
        """Percent of wall time stalled between two readings."""
        if wall_s <= 0:
            return 0.0
        return max(0.0, (end.total_us - start.total_us) / 1e6 / wall_s * 100)


def cpu_pressure() -> CpuPressure | None:
    text = _read(PRESSURE_CPU)
    if not text:
        return None
    for line in text.splitlines():
        if line.startswith("some"):
            fields = dict(kv.split("=") for kv in line.split()[1:])
            return CpuPressure(float(fields["avg10"]), float(fields["avg60"]), int(fields["total"]))
    return None


def cpu_busy_s() -> float | None:
    """Seconds of CPU time the whole machine spent busy since boot (all cores, incl. steal)."""
    text = _read(Path("/proc/stat"))
    if not text or not text.startswith("cpu "):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = (
        int(x) for x in text.splitlines()[0].split()[1:]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_s() -> float:
    """CPU seconds of this process and every descendant it (or they) reaped."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class CpuAccount:
    """CPU used on the machine during a measurement, split into ours and everyone else's.

    CPU pressure cannot tell a busy service from a noisy neighbour (4 workers on 2 cores
    stall each other); the CPU time nobody of ours used can: it is the disturbance.
    """

    busy_s: float | None
    own_s: float
    wall: float

    @staticmethod
    def start() -> CpuAccount:
        return CpuAccount(cpu_busy_s(), own_cpu_s(), time.monotonic())

    def foreign_pct(self) -> float | None:
        """Percent of the machine's CPU capacity used by others since start (after reaping)."""
        busy = cpu_busy_s()
        wall = time.monotonic() - self.wall
        if busy is None or self.busy_s is None or wall <= 0:
            return None
        foreign = (busy - self.busy_s) - (own_cpu_s() - self.own_s)
        return max(0.0, foreign / (wall * (os.cpu_count() or 1)) * 100)


def drop_caches() -> bool:
    """Drop the page cache (root only) so one allocator's run does not inherit another's."""
    if not is_root():
        return False
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


@dataclass
class MachineMeter:
    """CPU pressure and other processes' CPU use over one measurement, started at creation."""

    pressure0: CpuPressure | None = field(default_factory=cpu_pressure)
    account: CpuAccount = field(default_factory=CpuAccount.start)

    def finish(self) -> dict[str, float | None]:
        """{cpu_pressure_pct, foreign_cpu_pct} since start (call after children are reaped)."""
        pressure1 = cpu_pressure()
        wall = time.monotonic() - self.account.wall
        pressure = (
            CpuPressure.stalled_pct(self.pressure0, pressure1, wall)
            if self.pressure0 and pressure1
            else None
        )
        return {"cpu_pressure_pct": pressure, "foreign_cpu_pct": self.account.foreign_pct()}
