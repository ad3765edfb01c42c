"""The bare C++ control: build cxx/churn.cpp, run it under one allocator, read what it says.

The control runs the service's churn pattern without Python (no GIL, no pymalloc), so the
difference between allocators there is the allocator's alone. This module only builds and
drives the program; the runner wraps `run_control_once` with a memory cgroup and a sampler,
and chooses the allocator by the environment it passes (LD_PRELOAD).

The binary is compiled on first use with the system compiler and cached under a key made of
the source, the flags and the compiler's version, so an edit of any of them rebuilds it and
nothing else does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from bench.errors import UserError

if TYPE_CHECKING:
    from bench.spec import Spec

__all__ = [
    "APT_HINT",
    "CXXFLAGS",
    "LDLIBS",
    "PHASES",
    "SHARE_MODES",
    "Share",
    "ControlBuildError",
    "ControlError",
    "ControlOutputError",
    "ControlResult",
    "ControlRunError",
    "ControlTimeoutError",
    "build_control",
    "cache_key",
    "control_command",
    "default_cache_dir",
    "find_compiler",
    "parse_event",
    "run_control_once",
    "source_path",
    "spec_arguments",
]

#: Compile flags of the cached build (part of the cache key).
CXXFLAGS: tuple[str, ...] = ("-O2", "-std=c++17", "-pthread")
#: Link libraries: dlsym/dladdr live in libdl on older glibc (a no-op stub on glibc >= 2.34).
LDLIBS: tuple[str, ...] = ("-ldl",)
#: The phases the program announces, in order.
PHASES: tuple[str, ...] = ("fill", "churn", "idle", "done")
#: How the threads divide the live set (see cxx/churn.cpp): shard is the control.
SHARE_MODES: tuple[str, ...] = ("shard", "global")
Share = Literal["shard", "global"]
#: What to run when there is no compiler (Debian and Ubuntu).
APT_HINT = "apt-get install g++"

_STDERR_TAIL = 8192  # bytes of the child's stderr kept for error messages


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


# ---------------------------------------------------------------------------------------------
# Building


def source_path() -> Path:
    """cxx/churn.cpp of this checkout (the package is installed editable from the repository)."""
    return Path(__file__).resolve().parent.parent / "cxx" / "churn.cpp"


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/allocstudy/control, else ~/.cache/allocstudy/control."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "allocstudy" / "control"


def find_compiler(compiler: str | None = None) -> str:
    """Absolute path of the C++ compiler: the one given, else $CXX, else c++, else g++."""
    candidates = [compiler] if compiler else [os.environ.get("CXX") or "", "c++", "g++"]
    for name in candidates:
        if name and (found := shutil.which(name)):
            return found
    tried = ", ".join(repr(c) for c in candidates if c)
    raise ControlBuildError(
        f"no C++ compiler found (tried {tried}); the C++ control needs one to build "
        f"cxx/churn.cpp. Install it with: {APT_HINT}"
    )


def _compiler_version(compiler: str) -> str:
    """The compiler's `--version` text: a compiler upgrade must rebuild the binary."""
    try:
        out = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ControlBuildError(
            f"cannot run the C++ compiler {compiler}: {exc}. Install one with: {APT_HINT}"
        ) from None
    if out.returncode != 0:
        raise ControlBuildError(
            f"{compiler} --version failed (exit {out.returncode}): {out.stderr.strip()}"
        )
    return f"{os.path.realpath(compiler)}\n{out.stdout.strip()}"


def cache_key(source: bytes, flags: Sequence[str], compiler_version: str) -> str:
    """Hex digest naming one build: the same source, flags and compiler give the same key."""
    h = hashlib.sha256()
    for part in (source, "\0".join(flags).encode(), compiler_version.encode()):
        h.update(len(part).to_bytes(8, "little"))  # length-prefixed: no ambiguous joins
        h.update(part)
    return h.hexdigest()


def _compile(compiler: str, source: Path, flags: Sequence[str], out: Path) -> None:
    cmd = [compiler, *flags, str(source), "-o", str(out), *LDLIBS]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired:
        raise ControlBuildError(f"compiling {source} took over 600 s: {' '.join(cmd)}") from None
    except OSError as exc:
        raise ControlBuildError(
            f"cannot run the C++ compiler {compiler}: {exc}. Install one with: {APT_HINT}"
        ) from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip()
        raise ControlBuildError(
            f"compiling {source} failed (exit {proc.returncode}):\n  {' '.join(cmd)}\n{message}\n"
            f"A working C++17 compiler is needed; on Debian/Ubuntu: {APT_HINT}"
        )


def build_control(
    *,
    cache_dir: Path | None = None,
    compiler: str | None = None,
    extra_flags: Sequence[str] = (),
    source: Path | None = None,
) -> Path:
    """Path of a compiled control binary, compiling it only if no cached build matches.

    The binary is named after `cache_key` of the source, the flags (CXXFLAGS + extra_flags)
    and the compiler version. Two processes building at once serialize on a lock file; the
    compiler writes a temporary file that is renamed into place, so a reader never sees a
    half-written binary even if a build is killed.
    """
    src = source or source_path()
    try:
        text = src.read_bytes()
    except OSError as exc:
        raise ControlBuildError(
            f"cannot read the control's source {src}: {exc.strerror or exc}; "
            "allocstudy must run from its source checkout (pip install -e .)"
        ) from None
    cxx = find_compiler(compiler)
    flags = [*CXXFLAGS, *extra_flags]
    key = cache_key(text, [*flags, *LDLIBS], _compiler_version(cxx))
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    binary = folder / f"churn-{key[:20]}"
    if _is_executable(binary):
        return binary
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / f".churn-{key[:20]}.lock", "w")  # closed by the with below
    except OSError as exc:
        raise ControlBuildError(
            f"cannot use the build cache {folder}: {exc.strerror or exc}; "
            "pass cache_dir or set XDG_CACHE_HOME to a writable folder"
        ) from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _is_executable(binary):  # another process built it while we waited
            return binary
        fd, tmp_name = tempfile.mkstemp(prefix=f".{binary.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _compile(cxx, src, flags, tmp)
            tmp.chmod(0o755)
            os.replace(tmp, binary)
        finally:
            tmp.unlink(missing_ok=True)
    return binary


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


# ---------------------------------------------------------------------------------------------
# The command line and the output


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
) -> list[str]:
    """The argv that runs the control; bad values raise ValueError before anything starts.

    share="shard" (the control) lets each thread replace only its own survivors, as each
    service worker does; "global" lets any thread free any survivor (an exploration of
    cross-thread frees, a harsher workload for most allocators).
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
    ]  # fmt: skip


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
        if not _is_number(event.get("t_s")):
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
            if not _is_number(event[name]) or event[name] < 0:
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


def _is_number(value: object) -> bool:
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
        """One row of the `control` table (bench.results.tables), with the memory the runner measured.

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
        "threads": spec.control.threads,
        "live_bytes": spec.control_live_bytes,
        "min_bytes": churn.min_bytes,
        "max_bytes": churn.max_bytes,
        "seconds": spec.control.seconds,
        "idle_s": spec.control_idle_s,
        "seed": churn.seed,
    }


# ---------------------------------------------------------------------------------------------
# Running


class _Tail:
    """The last bytes of a stream, drained on a thread so the child never blocks on a full pipe."""

    def __init__(self, stream: Any) -> None:
        self._buf = bytearray()
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream: Any) -> None:
        with contextlib.suppress(OSError, ValueError):  # the stream closed under us
            for chunk in iter(lambda: stream.read1(65536), b""):
                self._buf += chunk
                del self._buf[:-_STDERR_TAIL]

    def text(self, wait: float = 1.0) -> str:
        """What was kept, after waiting up to `wait` s for the end of the stream."""
        self._thread.join(wait)
        return self._buf.decode(errors="replace").strip()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole session (it leads its own), then reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    proc.wait()


def _lines(proc: subprocess.Popen[bytes], deadline: float) -> Iterator[str]:
    """Yield stdout lines as they arrive; raise TimeoutError when the deadline passes."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    pending = b""
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not sel.select(min(remaining, 1.0)):
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode(errors="replace")
    if pending.strip():
        yield pending.decode(errors="replace")


def run_control_once(
    binary: Path | str,
    *,
    env: Mapping[str, str],
    threads: int,
    live_bytes: int,
    min_bytes: int = 4096,
    max_bytes: int = 65536,
    seconds: float,
    idle_s: float,
    seed: int = 1,
    share: Share = "shard",
    timeout: float,
    on_phase: Callable[[str, float], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    preexec: Callable[[], Any] | None = None,
) -> ControlResult:
    """Run the control once with exactly `env` and return what it reported.

    The caller owns the environment (LD_PRELOAD and allocator knobs): nothing is inherited.
    on_start(pid) is called as soon as the child exists (for procfs sampling); on_phase(name,
    t_s) as each phase begins, t_s on the program's clock. preexec runs in the child before
    exec (e.g. to join a memory cgroup, so every page it allocates is charged there). The
    child leads its own session; a timeout, an interrupt or any error kills that whole session,
    so no stray process survives. Raises ControlRunError (ControlTimeoutError on timeout) and
    ControlOutputError for output the program should never print.
    """
    cmd = control_command(
        binary,
        threads=threads,
        live_bytes=live_bytes,
        min_bytes=min_bytes,
        max_bytes=max_bytes,
        seconds=seconds,
        idle_s=idle_s,
        seed=seed,
        share=share,
    )
    if timeout <= 0:
        raise ValueError(f"timeout must be greater than 0, got {timeout!r}")
    deadline = time.monotonic() + timeout
    try:
        proc = subprocess.Popen(
            cmd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=preexec,
            close_fds=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ControlRunError(f"cannot start the control {cmd[0]}: {exc}") from None
    stderr = _Tail(proc.stderr)
    phase_t: dict[str, float] = {}
    phase_mono: dict[str, float] = {}
    result: dict[str, Any] | None = None
    try:
        if on_start is not None:
            on_start(proc.pid)
        try:
            for line in _lines(proc, deadline):
                if not line.strip():
                    continue
                event = parse_event(line)
                if event["event"] == "result":
                    result = event
                    continue
                phase_t[event["phase"]] = float(event["t_s"])
                if _is_number(event.get("mono_s")):
                    phase_mono[event["phase"]] = float(event["mono_s"])
                if on_phase is not None:
                    on_phase(event["phase"], float(event["t_s"]))
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired):
            _kill_group(proc)
            raise ControlTimeoutError(
                f"the control did not finish within {timeout:g} s and was killed "
                f"(last phase: {next(reversed(phase_t), 'none')}): {' '.join(cmd)}"
                + _stderr_note(stderr.text())
            ) from None
    finally:
        _kill_group(proc)  # a no-op after a clean exit; kills on errors and KeyboardInterrupt
        err_text = stderr.text()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    if proc.returncode != 0:
        raise ControlRunError(
            f"the control exited with {_exit_text(proc.returncode)}: {' '.join(cmd)}"
            + _stderr_note(err_text)
        )
    if result is None:
        raise ControlRunError(
            f"the control exited without a result line: {' '.join(cmd)}" + _stderr_note(err_text)
        )
    return ControlResult.from_event(result, phase_t_s=phase_t, phase_mono_s=phase_mono)


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"exit code {returncode}"


def _stderr_note(text: str) -> str:
    return f"\nits stderr ends with:\n{text}" if text else ""
