"""How much anonymous memory a process holds, read from /proc (bytes).

One reader for the service's /stats, a hosted app's stats and bench's memory groups (which
sum it over a process tree when no cgroup counts for them). Standard library only.
"""

from __future__ import annotations

__all__ = ["anon_bytes", "kernel_view", "rss_anon_bytes"]


def _kib_field(path: str, name: str) -> int:
    prefix = name + ":"
    with open(path, encoding="ascii") as handle:
        for line in handle:
            if line.startswith(prefix):
                return int(line.split()[1]) * 1024
    raise OSError(f"{path} has no {name} field")


def anon_bytes(pid: int | str = "self") -> int:
    """Proportional anonymous memory (Pss_Anon of /proc/PID/smaps_rollup), bytes.

    Pages shared after fork are split between the sharers, so a sum over a process tree counts
    each page once. Raises OSError when the process is gone.
    """
    return _kib_field(f"/proc/{pid}/smaps_rollup", "Pss_Anon")


def rss_anon_bytes(pid: int | str = "self") -> int:
    """Resident anonymous memory (RssAnon of /proc/PID/status), bytes; shared pages count fully."""
    return _kib_field(f"/proc/{pid}/status", "RssAnon")


#: smaps_rollup fields read, under the names the retention table uses.
_ROLLUP_FIELDS = {
    "Pss_Anon:": "Pss_Anon",
    "LazyFree:": "LazyFree",
    "AnonHugePages:": "AnonHugePages",
}


def kernel_view(pid: int | str = "self", *, rollup: bool = True) -> dict[str, int]:
    """The kernel's view of a process's anonymous memory, bytes: `Rss_Anon` from
    /proc/PID/status (kept counters: a few microseconds) and, with `rollup`, `Pss_Anon`,
    `LazyFree` and `AnonHugePages` from smaps_rollup, which walks the page tables (about 1 ms
    per 100 MB here). A field this kernel does not print is left out rather than given as 0."""
    found = {"Rss_Anon": rss_anon_bytes(pid)}
    if rollup:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                key = line.split(maxsplit=1)[0] if line.strip() else ""
                if (name := _ROLLUP_FIELDS.get(key)) is not None:
                    found[name] = int(line.split()[1]) * 1024
    return found
