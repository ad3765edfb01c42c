"""When each allocator gives freed memory back: its return timers, as read back in the process.

The settled memory of a study means something only if the idle lasted long enough for the
allocator's own return mechanisms to act. Those differ by family, and only some are timers:

- jemalloc: freed ("dirty") pages are purged along a decay curve over `opt.dirty_decay_ms`
  (10 s by default), then muzzy pages over `opt.muzzy_decay_ms`; without a background thread
  (`opt.background_thread`, off by default) the decay advances only when the program calls
  the allocator (jemalloc 5.3 TUNING.md, "dirty_decay_ms" and "background_thread"), and only
  calls that get past the thread cache count: measured here (jemalloc 5.3.0, `opt.tcache_max`
  32 KiB), 93 MB of dirty pages stayed for 40 s under 80 frees a second of 20 kB blocks and
  were purged within 25 s under the same rate of 70 kB blocks, or with no calls at all once
  `background_thread:true`. An idle worker whose requests free only small blocks keeps its
  dirty pages, however long the idle;
- mimalloc: free pages are purged after `purge_delay` ms (v3; 10 ms by default) or
  `decommit_delay` (2.0.9), again checked on allocator activity;
- gperftools tcmalloc: no timer; it returns page-heap spans at a pace set by
  `TCMALLOC_RELEASE_RATE` as the program frees (gperftools docs/tcmalloc.html);
- glibc: no timer; `free` trims the top of a heap above M_TRIM_THRESHOLD, so holes under a
  survivor stay (malloc(3), mallopt(3)).

`requests()` asks every process (the verification probe and each service worker, through
service.allocators.knobs) to read the timers of whichever family serves its malloc; `from_report`
turns that process's report into `Timer` records for the manifest, `horizon_s` into the
time memory may keep falling after the last free, and `least_idle_s` into the shortest idle
that lets it fall (the idle that ends once memory has settled never ends before it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "FLAT_SHARE",
    "HORIZON_FACTOR",
    "KNOWN_HORIZON_S",
    "REQUEST_PREFIX",
    "Timer",
    "flat_window_s",
    "from_report",
    "horizon_s",
    "least_idle_s",
    "requests",
    "to_records",
    "waits_for_calls",
]

#: Ids of the timer requests in a process's read-back (the variant's own are numbers).
REQUEST_PREFIX = "timer:"

#: How many horizons an idle that ends once memory has settled waits at least. jemalloc
#: without its background thread purges only when a worker's allocator calls tick its decay,
#: so its memory falls in steps, one worker at a time. With bare probes steps came up to 30 s
#: after load ended (quick runs 20261205T222951Z, 20261205T224200Z), or never; with probes
#: that reach the allocator (service.idlework) every repeat had settled 15-18 s into idle
#: (20261206T122010Z). Three horizons leave jemalloc's 10 s decay 12 s beyond that.
HORIZON_FACTOR = 3.0

# (family, setting read, unit, kind, what it does). kind: "timer" (delay in ms: -1 never),
# "pace" (a rate, not a time), "switch" (on or off).
_SETTINGS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "jemalloc",
        "opt.dirty_decay_ms",
        "ms",
        "timer",
        "freed (dirty) pages are purged along a decay curve over this time",
    ),
    (
        "jemalloc",
        "opt.muzzy_decay_ms",
        "ms",
        "timer",
        "purged-lazily (muzzy) pages are released over this time after that",
    ),
    (
        "jemalloc",
        "opt.background_thread",
        "",
        "switch",
        "a thread of jemalloc's own advances the decay; off, only allocator calls do",
    ),
    ("mimalloc", "purge_delay", "ms", "timer", "free pages are purged after this delay"),
    ("mimalloc", "decommit_delay", "ms", "timer", "free pages are decommitted after this delay"),
    (
        "tcmalloc",
        "tcmalloc_release_rate",
        "",
        "pace",
        "returns free spans as the program frees, at this pace (0: never); no timer",
    ),
)

_GLIBC_NOTE = (
    "no timer: free() trims only the top of a heap above M_TRIM_THRESHOLD (128 KiB by "
    "default), so holes under a survivor stay"
)


@dataclass(frozen=True)
class Timer:
    """One return setting of the allocator serving a process, as that process read it back."""

    family: str
    setting: str
    kind: str  # timer | pace | switch | none
    value: str | None  # as the library reports it (None: not read; see `why`)
    seconds: float | None  # a timer's delay in seconds (None: not a timer, or never)
    meaning: str
    how: str | None = None
    why: str | None = None


#: The return horizon (`horizon_s`) the stock allocators read back on this project's
#: machines (jemalloc 5.3.0: a 10 s dirty decay, no muzzy decay; mimalloc 3.4.3: a 1 s purge
#: delay; mimalloc 2.0.9: 25 ms; gperftools and glibc: no timer). Only for estimates made
#: before anything runs (`allocstudy plan`); a run always reads its own.
KNOWN_HORIZON_S: dict[str, float] = {
    "glibc": 0.0,
    "jemalloc": 10.0,
    "tcmalloc": 0.0,
    "mimalloc-v2": 0.025,
    "mimalloc-v3": 1.0,
}


def requests() -> list[dict[str, Any]]:
    """The read-back requests of every family's return settings (service.allocators.knobs format).

    A process answers only those of the family serving its malloc ("not-served" for the rest),
    and an option its version lacks as "absent": both are dropped by `from_report`.
    """
    out = []
    for family, setting, _, _, _ in _SETTINGS:
        request: dict[str, Any] = {
            "family": family,
            "name": setting,
            "id": REQUEST_PREFIX + setting,
        }
        if family == "tcmalloc":
            request.update(read="flag", type="double")
        out.append(request)
    return out


def _seconds(kind: str, value: str | None) -> float | None:
    if kind != "timer" or value is None:
        return None
    try:
        ms = float(value)
    except ValueError:
        return None
    return ms / 1000 if ms >= 0 else None  # -1: never purges on a timer


def from_report(report: Mapping[str, Any] | None) -> list[Timer]:
    """The timers of one process's read-back report (service.allocators.knobs.read_knobs): only the
    serving family's settings that its version has. glibc, which has no setting to read,
    gets one record saying how it returns memory."""
    if not report:
        return []
    family = report.get("family")
    if family == "glibc":
        return [Timer("glibc", "M_TRIM_THRESHOLD", "none", None, None, _GLIBC_NOTE)]
    by_id = {r.get("id"): r for r in report.get("readings") or [] if isinstance(r, dict)}
    out = []
    for fam, setting, unit, kind, meaning in _SETTINGS:
        reading = by_id.get(REQUEST_PREFIX + setting)
        if fam != family or reading is None or reading.get("status") == "not-served":
            continue
        if reading.get("status") == "absent":
            continue  # this version has no such option (mimalloc v3: no decommit_delay)
        value = reading.get("value") if reading.get("status") == "read" else None
        shown = None if value is None else f"{value} {unit}".strip()
        out.append(
            Timer(
                family=str(family),
                setting=str(reading.get("setting") or setting),
                kind=kind,
                value=shown,
                seconds=_seconds(kind, value),
                meaning=meaning,
                how=reading.get("how"),
                why=None if value is not None else reading.get("why"),
            )
        )
    return out


def horizon_s(timers: Iterable[Timer]) -> float:
    """How long after its last free the allocator may still be returning memory on its own
    timers: jemalloc's dirty then muzzy decay in turn, else the longest delay (0 without)."""
    ts = list(timers)
    decay = [t.seconds for t in ts if t.family == "jemalloc" and t.seconds is not None]
    if decay:
        return float(sum(decay))
    return max((t.seconds for t in ts if t.seconds is not None), default=0.0)


def waits_for_calls(timers: Iterable[Timer]) -> Timer | None:
    """The timer that advances only when the program calls the allocator (jemalloc's decay
    without its background thread; mimalloc's purge delays, checked on its allocation and
    free paths), or None: such a timer never runs in an idle whose requests stay in the
    allocator's per-thread caches (service.idlework)."""
    ts = list(timers)
    if any(t.setting == "opt.background_thread" and t.value == "true" for t in ts):
        return None
    running = [t for t in ts if t.kind == "timer" and t.seconds]
    return max(running, key=lambda t: t.seconds or 0.0, default=None)


def least_idle_s(timers: Iterable[Timer], floor_s: float) -> float:
    """The shortest idle that lets these timers act: HORIZON_FACTOR horizons, never under
    the spec's floor."""
    return max(float(floor_s), HORIZON_FACTOR * horizon_s(timers))


#: How much of its return horizon an allocator must stay flat before an idle that ends once
#: settled may end: jemalloc purges in steps, on allocator activity, and in the quick study a
#: step still came 12 s after a flat 2.5 s window (run 20261205T224200Z, repeat 1).
FLAT_SHARE = 0.5


def flat_window_s(timers: Iterable[Timer], window_s: float) -> float:
    """How long memory must stay flat before the idle may end: the settle window, or half
    the allocator's return horizon when that is longer (jemalloc's 10 s decay: 5 s)."""
    return max(float(window_s), FLAT_SHARE * horizon_s(timers))


def to_records(timers: Sequence[Timer]) -> list[dict[str, Any]]:
    """Timers as manifest records (plain dicts, None kept)."""
    return [asdict(t) for t in timers]
