"""Allocation throughput of the bare C++ control under each allocator: a markdown table.

    .venv/bin/python benchmarks/control_throughput.py [--seconds 20] [--repeats 3]

Runs the control (cxx/churn.cpp, the spec's threads, the service's live set and buffer sizes) under
glibc, jemalloc, tcmalloc, mimalloc v2 and v3, whichever are installed. Repeats are
interleaved (every allocator once, then every allocator again), so a disturbance of the
machine spreads over all allocators instead of hitting one. Beside each mean it prints the
max-min spread of the repeats and two signs of a disturbed machine, because on a shared or
small machine that, not the allocator, can be what moved the number:
- CPU pressure: the share of each run's time during which some task waited for a CPU
  (/proc/pressure/cpu "some", delta of its total). It counts the control's own threads too:
  4 threads on 2 cores make it high by themselves, so compare it across allocators only.
- CPU share: CPU time the control got during the churn, as % of what its threads could use
  (min(threads, cores) x seconds); below ~90 % something else took CPU from it.

This is a measurement: run it alone on an idle machine (a test suite or a build beside it
will show up in the pressure column).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import sysconfig
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.experiments.control_build import build_control  # noqa: E402 - after the path set-up
from bench.experiments.control_program import ControlError, spec_arguments  # noqa: E402
from bench.experiments.control_run import run_control_once  # noqa: E402
from bench.spec import Spec, SpecError, load_spec, usable_cores  # noqa: E402

__all__ = [
    "ALLOCATORS",
    "Tally",
    "Target",
    "cpu_pressure_total_us",
    "cpu_share_pct",
    "main",
    "markdown_table",
    "mean_and_spread",
    "pressure_pct",
    "resolve_targets",
    "schedule",
]

ALLOCATORS: tuple[str, ...] = ("glibc", "jemalloc", "tcmalloc", "mimalloc-v2", "mimalloc-v3")

#: Where the libraries are on the reference machine, used when bench.allocators.registry is absent.
_FALLBACK_LIBRARIES: dict[str, str | None] = {
    "glibc": None,
    "jemalloc": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
    "mimalloc-v2": "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2",
    "mimalloc-v3": str(
        Path(sysconfig.get_paths()["purelib"]) / "cmeel.prefix" / "lib" / "libmimalloc.so.3"
    ),
}

#: A control that got less than this share of the CPU it could use was disturbed.
SHARE_WARN_PCT = 90.0


@dataclass(frozen=True)
class Target:
    """One allocator to run: the environment that selects it, and the library it must prove."""

    name: str
    env: dict[str, str]
    expected_library: str | None  # None: could not be resolved, see reason
    reason: str | None = None


def _libc_realpath() -> str:
    import ctypes.util

    name = ctypes.util.find_library("c") or "libc.so.6"
    for folder in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64"):
        if Path(folder, name).exists():
            return os.path.realpath(Path(folder, name))
    return name


def resolve_targets(names: Iterable[str]) -> list[Target]:
    """Targets through bench.allocators.registry when it is there, else through the known paths."""
    try:
        from bench.allocators.registry import resolve
    except ImportError:
        resolve = None
    targets = []
    for name in names:
        if resolve is not None:
            alloc = resolve(name, build=False)
            if alloc.available:
                targets.append(Target(name, alloc.preload_env(), alloc.expected_library()))
            else:
                targets.append(Target(name, {}, None, f"{alloc.reason} (fix: {alloc.fix})"))
            continue
        lib = _FALLBACK_LIBRARIES.get(name)
        if name == "glibc":
            targets.append(Target(name, {}, _libc_realpath()))
        elif lib is None or not Path(lib).is_file():
            targets.append(Target(name, {}, None, f"{lib or name} not found"))
        else:
            targets.append(Target(name, {"LD_PRELOAD": lib}, os.path.realpath(lib)))
    return targets


def schedule(names: Sequence[str], repeats: int) -> list[tuple[int, str]]:
    """(repeat, allocator) pairs, round-robin: all allocators once per repeat."""
    return [(r, n) for r in range(repeats) for n in names]


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and max-min spread as % of the mean (0 for one value; NaN for none)."""
    if not values:
        return float("nan"), float("nan")
    mean = statistics.fmean(values)
    spread = (max(values) - min(values)) / mean * 100 if mean else 0.0
    return mean, spread


def cpu_pressure_total_us(text: str | None = None) -> int | None:
    """The "some total" of /proc/pressure/cpu (µs any task waited for a CPU), None if absent."""
    if text is None:
        try:
            text = Path("/proc/pressure/cpu").read_text()
        except OSError:
            return None
    for line in text.splitlines():
        if line.startswith("some "):
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                if key == "total":
                    return int(value)
    return None


def pressure_pct(before: int | None, after: int | None, wall_s: float) -> float | None:
    """Share of a run's wall time during which some task was stalled waiting for a CPU."""
    if before is None or after is None or wall_s <= 0:
        return None
    return max(0.0, (after - before) / (wall_s * 1e6) * 100)


def cpu_share_pct(cpu_s: float | None, seconds: float, threads: int, cpus: int) -> float | None:
    """CPU time the control got during its churn, as % of what its threads could use.

    /proc/pressure/cpu counts the control's own threads too (4 threads on 2 cores wait half
    the time by themselves), so this is the clearer sign of a neighbour taking CPU: below
    100 % the control did not get every core it could have used.
    """
    if cpu_s is None or seconds <= 0:
        return None
    return cpu_s / (seconds * max(1, min(threads, cpus))) * 100


@dataclass
class Tally:
    """What the repeats of one allocator gave."""

    rates: list[float] = field(default_factory=list)
    pressures: list[float] = field(default_factory=list)
    cpu_shares: list[float] = field(default_factory=list)
    served_by: set[str] = field(default_factory=set)
    proven: bool = True
    failures: int = 0


def _mean_pct(values: Sequence[float]) -> str:
    return f"{statistics.fmean(values):.0f} %" if values else "n/a"


def markdown_table(tallies: dict[str, Tally], skipped: dict[str, str]) -> str:
    """The result table; allocators that could not run are listed with the reason."""
    lines = [
        "| allocator | allocs/s (M), mean | spread (max-min) | CPU pressure (some) "
        "| CPU share | runs | malloc from |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, t in tallies.items():
        mean, spread = mean_and_spread(t.rates)
        served = ", ".join(sorted(Path(s).name for s in t.served_by)) or "–"
        if not t.proven:
            served += " (NOT the expected library)"
        runs = f"{len(t.rates)}" + (f" ({t.failures} failed)" if t.failures else "")
        lines.append(
            f"| {name} | {mean / 1e6:.2f} | {spread:.1f} % | {_mean_pct(t.pressures)} "
            f"| {_mean_pct(t.cpu_shares)} | {runs} | {served} |"
        )
    for name, reason in skipped.items():
        lines.append(f"| {name} | – | – | – | 0 | unavailable: {reason} |")
    return "\n".join(lines)


def _threads(text: str) -> int:
    """A number of threads, or 'cores' resolved to the CPUs this process may run on (as a
    spec's `control.threads: cores` is)."""
    if text == "cores":
        return usable_cores()
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor 'cores'") from None
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1")
    return value


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20.0, help="churn per run (default 20)")
    p.add_argument("--repeats", type=int, default=3, help="runs per allocator (default 3)")
    p.add_argument(
        "--threads",
        type=_threads,
        help="threads, or 'cores': the CPUs this process may run on (default: the spec's)",
    )
    p.add_argument(
        "--warmup-s",
        type=float,
        help="uncounted churn before the measured seconds (default: the spec's, 0 without one)",
    )
    p.add_argument("--live-bytes", type=int, help="live set (default: match the service's)")
    p.add_argument("--idle-s", type=float, default=0.0, help="rest after the churn (default 0)")
    p.add_argument("--spec", help="take the workload from this spec (default: built-in defaults)")
    p.add_argument(
        "--allocators", default=",".join(ALLOCATORS), help="comma-separated (default: all five)"
    )
    p.add_argument("--share", choices=("shard", "global"), default="shard")
    args = p.parse_args(argv)
    if args.seconds <= 0 or args.repeats < 1:
        p.error("--seconds must be > 0 and --repeats >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        spec = (
            load_spec(args.spec)
            if args.spec
            else Spec(name="bench", title="bench", allocators=["glibc"])
        )
    except SpecError as exc:
        print(exc, file=sys.stderr)
        return 2
    workload = spec_arguments(spec) | {"seconds": args.seconds, "idle_s": args.idle_s}
    if args.threads is not None:
        workload["threads"] = args.threads
    if args.warmup_s is not None:
        workload["warmup_s"] = args.warmup_s
    if args.live_bytes is not None:
        workload["live_bytes"] = args.live_bytes

    binary = build_control()
    targets = resolve_targets(n.strip() for n in args.allocators.split(",") if n.strip())
    runnable = [t for t in targets if t.expected_library is not None]
    skipped = {t.name: t.reason or "unavailable" for t in targets if t.expected_library is None}
    tallies = {t.name: Tally() for t in runnable}
    by_name = {t.name: t for t in runnable}
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    timeout = 120 + 3 * (args.seconds + args.idle_s + workload["warmup_s"])
    print(
        f"control: {workload['threads']} threads, live set {workload['live_bytes'] / 2**20:.0f} "
        f"MiB, {workload['warmup_s']:g} s warm-up, {args.seconds:g} s churn, "
        f"{args.repeats} repeat(s), binary {binary}",
        file=sys.stderr,
    )
    for repeat, name in schedule([t.name for t in runnable], args.repeats):
        target = by_name[name]
        before, start = cpu_pressure_total_us(), time.monotonic()
        try:
            result = run_control_once(
                binary, env=base_env | target.env, timeout=timeout, share=args.share, **workload
            )
        except ControlError as exc:
            print(f"  {name} #{repeat + 1}: failed: {exc}", file=sys.stderr)
            tallies[name].failures += 1
            continue
        pct = pressure_pct(before, cpu_pressure_total_us(), time.monotonic() - start)
        cpu_s = (
            None
            if result.cpu_user_s is None or result.cpu_sys_s is None
            else result.cpu_user_s + result.cpu_sys_s
        )
        share = cpu_share_pct(cpu_s, result.seconds, result.threads, os.cpu_count() or 1)
        tally = tallies[name]
        tally.rates.append(result.allocs_per_s)
        if pct is not None:
            tally.pressures.append(pct)
        if share is not None:
            tally.cpu_shares.append(share)
        tally.served_by.add(result.malloc_library)
        tally.proven &= result.malloc_library == target.expected_library
        print(
            f"  {name} #{repeat + 1}: {result.allocs_per_s / 1e6:.2f} M allocs/s, "
            f"CPU pressure {'n/a' if pct is None else f'{pct:.0f} %'}, "
            f"CPU share {'n/a' if share is None else f'{share:.0f} %'}",
            file=sys.stderr,
        )
    print(markdown_table(tallies, skipped))
    starved = [n for n, t in tallies.items() if t.cpu_shares and min(t.cpu_shares) < SHARE_WARN_PCT]
    if starved:
        print(
            f"\nwarning: the control got less than {SHARE_WARN_PCT:g} % of the CPU it could use "
            f"during runs of {', '.join(starved)}: something else took CPU time. Re-run on an "
            "idle machine (no builds, tests or other benchmarks) for a cleaner measurement.",
            file=sys.stderr,
        )
    ok = all(t.proven and not t.failures for t in tallies.values())
    return 0 if ok else 3


if __name__ == "__main__":
    sys.exit(main())
