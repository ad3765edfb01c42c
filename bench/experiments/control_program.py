"""The bare C++ control's interface: its command line, its output events, its result.

The control (cxx/churn.cpp) runs the service's churn pattern without Python (no GIL, no
pymalloc), so the difference between allocators there is the allocator's alone. This module
says what the program is told (`control_command`, `spec_arguments`) and checks what it says
(`parse_event`, `ControlResult`), and names what can go wrong with it (`ControlError` and its
kinds). bench.experiments.control_build compiles it, bench.experiments.control_run runs it
once, bench.experiments.control runs one measured repeat.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from bench.errors import UserError

if TYPE_CHECKING:
    from bench.spec import Spec

__all__ = [
    "PHASES",
    "SHARE_MODES",
    "Share",
    "ControlBuildError",
    "ControlError",
    "ControlOutputError",
    "ControlResult",
    "ControlRunError",
    "ControlTimeoutError",
    "control_command",
    "is_number",
    "parse_event",
    "spec_arguments",
]

#: The phases the program announces, in order.
PHASES: tuple[str, ...] = ("fill", "churn", "idle", "done")
#: How the threads divide the live set (see cxx/churn.cpp): shard is the control.
SHARE_MODES: tuple[str, ...] = ("shard", "global")
Share = Literal["shard", "global"]


class ControlError(UserError):
    """Anything that went wrong building or running the control."""


class ControlBuildError(ControlError):
    """No compiler, or the compiler refused the source; the message carries its output."""


class ControlOutputError(ControlError, ValueError):
    """A line the program printed is not one of its documented events."""


class ControlRunError(ControlError):
    """The program failed: a non-zero exit, a missing result, or a timeout."""


class ControlTimeoutError(ControlRunError):
    """The program did not finish in time and was killed."""


def _seconds_arg(name: str, value: float, *, allow_zero: bool) -> str:
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = "0 or more" if allow_zero else "greater than 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return repr(number)


def _count_arg(name: str, value: int, *, minimum: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return str(value)


def control_command(
    binary: Path | str,
    *,
    threads: int,
    live_bytes: int,
    min_bytes: int,
    max_bytes: int,
    seconds: float,
    idle_s: float,
    seed: int,
    share: Share = "shard",
    warmup_s: float = 0.0,
    stats_log: Path | str | None = None,
    stats_every_s: float = 2.0,
) -> list[str]:
    """The argv that runs the control; bad values raise ValueError before anything starts.

    share="shard" (the control) lets each thread replace only its own survivors, as each
    service worker does; "global" lets any thread free any survivor (an exploration of
    cross-thread frees, a harsher workload for most allocators). With `stats_log` the program
    appends its allocator's own statistics there every `stats_every_s` (the retention table).
    """
    if share not in SHARE_MODES:
        raise ValueError(f"share must be one of {', '.join(SHARE_MODES)}, got {share!r}")
    if isinstance(min_bytes, int) and isinstance(max_bytes, int) and min_bytes > max_bytes:
        raise ValueError(f"min_bytes ({min_bytes}) must not exceed max_bytes ({max_bytes})")
    return [
        str(binary),
        "--threads", _count_arg("threads", threads, minimum=1),
        "--live-bytes", _count_arg("live_bytes", live_bytes, minimum=1),
        "--min-bytes", _count_arg("min_bytes", min_bytes, minimum=1),
        "--max-bytes", _count_arg("max_bytes", max_bytes, minimum=1),
        "--seconds", _seconds_arg("seconds", seconds, allow_zero=False),
        "--idle-s", _seconds_arg("idle_s", idle_s, allow_zero=True),
        "--seed", _count_arg("seed", seed, minimum=0),
        "--share", share,
    ] + (
        ["--warmup-s", _seconds_arg("warmup_s", warmup_s, allow_zero=True)] if warmup_s else []
    ) + (
        ["--stats-log", str(stats_log),
         "--stats-every-s", _seconds_arg("stats_every_s", stats_every_s, allow_zero=False)]
        if stats_log is not None else []
    )  # fmt: skip


_RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "threads": (int,),
    "cpus": (int,),
    "operations": (int,),
    "seconds": (int, float),
    "allocs_per_s": (int, float),
    "live_bytes": (int,),
    "share": (str,),
    "idle_s": (int, float),
    "cpu_user_s": (int, float),
    "cpu_sys_s": (int, float),
    "minor_faults": (int,),
    "major_faults": (int,),
    "run_cpu_user_s": (int, float),
    "run_cpu_sys_s": (int, float),
    "run_minor_faults": (int,),
    "run_major_faults": (int,),
    "checksum": (str,),
    "malloc_library": (str,),
    "pid": (int,),
}
#: How an error message names each kind of result field.
_KIND_NAMES: dict[tuple[type, ...], str] = {
    (int,): "a whole number",
    (int, float): "a number",
    (str,): "a string",
}
#: Result fields that count or time something: a negative or non-finite value is a bug.
_NON_NEGATIVE = (
    "operations",
    "seconds",
    "allocs_per_s",
    "idle_s",
    "cpu_user_s",
    "cpu_sys_s",
    "minor_faults",
    "major_faults",
    "run_cpu_user_s",
    "run_cpu_sys_s",
    "run_minor_faults",
    "run_major_faults",
)


def _excerpt(line: str) -> str:
    return repr(line if len(line) <= 200 else line[:200] + "...")


def parse_event(line: str) -> dict[str, Any]:
    """One output line as a dict, checked against the documented shape of its event.

    Phase events need a known phase and a number t_s; the result needs every field that
    ControlResult reads, with the right type, counts and times finite and never negative, at
    least one thread and one CPU, and a known share mode. Anything else raises
    ControlOutputError quoting the line, so a driver never carries on with half-understood
    output (a program built from an older churn.cpp, say, that does not report CPU time).
    """
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ControlOutputError(
            f"control output is not JSON ({exc.msg}): {_excerpt(line)}"
        ) from None
    if not isinstance(event, dict):
        raise ControlOutputError(f"control output is not a JSON object: {_excerpt(line)}")
    kind = event.get("event")
    if kind == "phase":
        if event.get("phase") not in PHASES:
            raise ControlOutputError(f"unknown phase in control output: {_excerpt(line)}")
        if not is_number(event.get("t_s")):
            raise ControlOutputError(f"phase event without a number t_s: {_excerpt(line)}")
        return event
    if kind == "result":
        for name, types in _RESULT_FIELDS.items():
            value = event.get(name)
            if isinstance(value, bool) or not isinstance(value, types):
                raise ControlOutputError(
                    f"result event: field {name!r} missing or not {_KIND_NAMES[types]}: "
                    f"{_excerpt(line)}"
                )
        for name in _NON_NEGATIVE:
            if not is_number(event[name]) or event[name] < 0:
                raise ControlOutputError(
                    f"result event: field {name!r} is not a finite number >= 0: {_excerpt(line)}"
                )
        if event["threads"] < 1 or event["cpus"] < 1:
            raise ControlOutputError(
                f"result event: threads and cpus must be at least 1: {_excerpt(line)}"
            )
        if event["share"] not in SHARE_MODES:
            raise ControlOutputError(
                f"result event: share is not one of {', '.join(SHARE_MODES)}: {_excerpt(line)}"
            )
        checksum = event["checksum"]
        if not checksum or any(c not in "0123456789abcdef" for c in checksum):
            raise ControlOutputError(f"result event: checksum is not hex: {_excerpt(line)}")
        return event
    raise ControlOutputError(f"unknown event {kind!r} in control output: {_excerpt(line)}")


def is_number(value: object) -> bool:
    """A finite int or float and not a bool: what a count or a time in the output must be."""
    """A finite int or float and not a bool: what a count or a time in the output must be."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class ControlResult:
    """What one run of the control reported, plus when each phase began.

    checksum folds every byte value written and read back, so the compiler cannot drop the
    work; it depends on timing (how many operations ran). fill_checksum covers the fill only
    and depends on the arguments alone, not on timing: the same seed gives the same one.

    threads, live_bytes, share and idle_s are the program's echo of the options it ran with,
    so a driver proves its settings arrived instead of assuming so; cpus is how many CPUs the
    process could run on (its affinity mask).

    allocs_per_s counts churn operations (one malloc, one free, every page touched) per
    second of churn. cpu_user_s, cpu_sys_s, minor_faults and major_faults cover the churn
    phase only (all threads); the run_* fields cover the whole run up to the result. Page
    faults are how an allocator that returns memory eagerly pays for it when it needs the
    memory again, and system time is where that payment shows.

    phase_t_s is seconds since program start; phase_mono_s is CLOCK_MONOTONIC, the clock of
    time.monotonic(), so samples taken by the driver can be placed in phases exactly.
    """

    threads: int
    cpus: int
    operations: int
    seconds: float
    allocs_per_s: float
    live_bytes: int
    share: Share
    idle_s: float
    cpu_user_s: float
    cpu_sys_s: float
    minor_faults: int
    major_faults: int
    run_cpu_user_s: float
    run_cpu_sys_s: float
    run_minor_faults: int
    run_major_faults: int
    checksum: str
    malloc_library: str
    pid: int
    slots: int | None = None
    fill_checksum: str | None = None
    phase_t_s: dict[str, float] = field(default_factory=dict)
    phase_mono_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_event(
        cls,
        event: Mapping[str, Any],
        *,
        phase_t_s: Mapping[str, float] | None = None,
        phase_mono_s: Mapping[str, float] | None = None,
    ) -> ControlResult:
        """Build from a parsed result event (see parse_event); extra keys are ignored."""
        if event.get("event") != "result":
            raise ControlOutputError(f"not a result event: {dict(event)!r}")
        return cls(
            threads=int(event["threads"]),
            cpus=int(event["cpus"]),
            operations=int(event["operations"]),
            seconds=float(event["seconds"]),
            allocs_per_s=float(event["allocs_per_s"]),
            live_bytes=int(event["live_bytes"]),
            share=cast(Share, str(event["share"])),
            idle_s=float(event["idle_s"]),
            cpu_user_s=float(event["cpu_user_s"]),
            cpu_sys_s=float(event["cpu_sys_s"]),
            minor_faults=int(event["minor_faults"]),
            major_faults=int(event["major_faults"]),
            run_cpu_user_s=float(event["run_cpu_user_s"]),
            run_cpu_sys_s=float(event["run_cpu_sys_s"]),
            run_minor_faults=int(event["run_minor_faults"]),
            run_major_faults=int(event["run_major_faults"]),
            checksum=str(event["checksum"]),
            malloc_library=str(event["malloc_library"]),
            pid=int(event["pid"]),
            slots=_opt(int, event.get("slots")),
            fill_checksum=_opt(str, event.get("fill_checksum")),
            phase_t_s=dict(phase_t_s or {}),
            phase_mono_s=dict(phase_mono_s or {}),
        )

    @property
    def cpu_s(self) -> float:
        """CPU seconds the churn phase used, user plus system, over all threads."""
        return self.cpu_user_s + self.cpu_sys_s

    @property
    def allocs_per_cpu_s(self) -> float | None:
        """Churn operations per CPU-second (user + system), None when no CPU time was counted.

        Beside allocs_per_s (per wall-second) because wall-clock throughput mixes in waiting:
        with more threads than CPUs, or other work on the machine, threads wait for a core
        and the wall-clock rate falls although the allocator did not get slower. CPU time
        counts only the time a thread really ran, so this rate is the allocator's cost per
        unit of work whatever the machine was doing. With T threads each on a CPU of its own
        it is about allocs_per_s / T: compare it between allocators, not with allocs_per_s.
        """
        cpu = self.cpu_s
        return self.operations / cpu if cpu > 0 else None

    @property
    def oversubscribed(self) -> bool:
        """More threads than the CPUs the process could use: the threads took turns."""
        return self.threads > self.cpus

    @property
    def oversubscription(self) -> str | None:
        """The method flag for an oversubscribed run ("4 threads on 2 CPUs"), else None."""
        if not self.oversubscribed:
            return None
        return f"{self.threads} threads on {self.cpus} CPU{'s' if self.cpus != 1 else ''}"

    def row(
        self,
        *,
        allocator: str,
        repeat: int,
        peak_anon_bytes: int | None,
        settled_anon_bytes: int | None,
        settle_window_s: float | None,
    ) -> dict[str, Any]:
        """One row of the `control` table (bench.results.tables), with the runner's memory figures.

        settle_window_s is the window the runner took the settled median over (the service's,
        or the whole rest when the control rested less than that).
        """
        return {
            "allocator": allocator,
            "repeat": repeat,
            "threads": self.threads,
            "operations": self.operations,
            "seconds": self.seconds,
            "allocs_per_s": self.allocs_per_s,
            "peak_anon_bytes": peak_anon_bytes,
            "settled_anon_bytes": settled_anon_bytes,
            "live_bytes": self.live_bytes,
            "checksum": self.checksum,
            "share": self.share,
            "idle_s": self.idle_s,
            "settle_window_s": settle_window_s,
            "cpus": self.cpus,
            "oversubscribed": self.oversubscribed,
            "cpu_user_s": self.cpu_user_s,
            "cpu_sys_s": self.cpu_sys_s,
            "minor_faults": self.minor_faults,
            "major_faults": self.major_faults,
            "allocs_per_cpu_s": self.allocs_per_cpu_s,
            "run_cpu_user_s": self.run_cpu_user_s,
            "run_cpu_sys_s": self.run_cpu_sys_s,
            "run_minor_faults": self.run_minor_faults,
            "run_major_faults": self.run_major_faults,
        }


def _opt(kind: Callable[[Any], Any], value: Any) -> Any:
    return None if value is None else kind(value)


def spec_arguments(spec: Spec) -> dict[str, Any]:
    """The workload keywords of control_command / run_control_once for a spec.

    The live set matches the service's (Spec.control_live_bytes), and the buffer sizes and
    seed are the service's churn settings, so the control runs the same churn pattern; the
    rest is Spec.control_idle_s (by default the service's idle_s, so both settle alike).
    share is not among them: the caller passes spec.control.share (or its own choice, as
    benchmarks/control_throughput.py does) by keyword.
    """
    churn = spec.service.churn
    return {
        "live_bytes": spec.control_live_bytes,
        "min_bytes": churn.min_bytes,
        "max_bytes": churn.max_bytes,
        "threads": spec.control_threads,
        "seconds": spec.control.seconds,
        "warmup_s": spec.control.warmup_s,
        "idle_s": spec.control_idle_s,
        "seed": churn.seed,
    }
