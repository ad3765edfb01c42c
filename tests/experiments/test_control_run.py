"""The real control program under real allocators: proof, checksums, bounded memory, errors.

Every run here is short (about a second) and its live set modest (64 MiB), so the whole file
stays well under half a minute on two cores.
"""

from __future__ import annotations

import os
import resource
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.experiments.control_program import (
    PHASES,
    ControlResult,
    ControlRunError,
    ControlTimeoutError,
)
from bench.experiments.control_run import run_control_once

MiB = 1 << 20
LIVE = 64 * MiB
THREADS = 4

#: What an allocator may hold beyond the live set, per thread, for this workload (4 threads,
#: sizes 4-64 KiB, 64 MiB live). Measured here: glibc 74 MiB, jemalloc 96, tcmalloc 108,
#: mimalloc-v2 112, mimalloc-v3 128, stable to 1 MiB across runs.
#: - glibc: best fit with coalescing, one arena per thread; only the arenas' top slack.
#: - jemalloc: 4 size classes per doubling (up to 20% rounding above 16 KiB, where a size is
#:   a page-rounded "large" extent), per-thread tcache, dirty pages kept for its 10 s decay.
#: - tcmalloc: thread caches alone may hold 32 MiB by default (max_total_thread_cache_bytes),
#:   plus the central free lists.
#: - mimalloc: every thread keeps partly used pages for each of the ~20 size classes between
#:   4 and 64 KiB (64 KiB small pages, 512 KiB medium pages), and frees are not purged yet.
#: A leak of the replaced survivors would grow by ~34 KiB per operation (over 30 GiB a
#: second), and a live set sized twice too large would exceed every bound but mimalloc's.
OVERHEAD_PER_THREAD: dict[str, int] = {
    "glibc": 4 * MiB,
    "jemalloc": 8 * MiB,
    "tcmalloc": 12 * MiB,
    "mimalloc-v2": 16 * MiB,
    "mimalloc-v3": 16 * MiB,
}
ALLOCATORS = list(OVERHEAD_PER_THREAD)


def _anon_bytes(pid: int) -> int | None:
    """Proportional anonymous memory of a process (what the study measures), or None if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss_Anon:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class PeakSampler:
    """Polls a child's anonymous memory every 10 ms on a thread; keeps the highest value."""

    def __init__(self) -> None:
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._poll, args=(pid,), daemon=True)
        self._thread.start()

    def _poll(self, pid: int) -> None:
        while not self._stop.is_set():
            value = _anon_bytes(pid)
            if value is not None:
                self.peak = max(self.peak, value)
                self.samples += 1
            self._stop.wait(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


@dataclass(frozen=True)
class Run:
    result: ControlResult
    peak_anon_bytes: int
    samples: int
    phases_seen: list[tuple[str, float]]


def _pid_gone(pid: int) -> bool:
    """True once no process of that id exists (the child was reaped, not left as a zombie)."""
    return not Path(f"/proc/{pid}").exists()


@pytest.fixture(scope="module")
def runs(
    control_binary: Path, allocator_env: Callable[[str], dict[str, str]]
) -> Iterator[Callable[[str], Run]]:
    """One 1-second run per allocator, made on first use and shared by the tests below."""
    done: dict[str, Run] = {}

    def get(name: str) -> Run:
        if name not in done:
            env = allocator_env(name)  # skips the test when the library is absent
            sampler = PeakSampler()
            phases: list[tuple[str, float]] = []
            try:
                result = run_control_once(
                    control_binary, env=env, threads=THREADS, live_bytes=LIVE, seconds=1.0,
                    idle_s=0.2, seed=1, timeout=30, on_start=sampler.start,
                    on_phase=lambda phase, t: phases.append((phase, t)),
                )  # fmt: skip
            finally:
                sampler.stop()
            done[name] = Run(result, sampler.peak, sampler.samples, phases)
        return done[name]

    yield get


@pytest.mark.parametrize("name", ALLOCATORS)
def test_the_preloaded_library_serves_malloc(
    runs: Callable[[str], Run], name: str, allocator_env: Callable[[str], dict[str, str]]
) -> None:
    result = runs(name).result
    preload = allocator_env(name).get("LD_PRELOAD")
    if preload is None:
        assert Path(result.malloc_library).name == "libc.so.6"
    else:
        assert result.malloc_library == os.path.realpath(preload)


@pytest.mark.parametrize("name", ALLOCATORS)
def test_the_live_set_stays_bounded(runs: Callable[[str], Run], name: str) -> None:
    run = runs(name)
    assert run.samples >= 20, "too few memory samples to judge"
    # At least the live set was resident: every page of every buffer was written.
    assert run.peak_anon_bytes >= 0.9 * LIVE
    bound = 1.15 * LIVE + THREADS * OVERHEAD_PER_THREAD[name]
    assert run.peak_anon_bytes <= bound, (
        f"{name}: peak {run.peak_anon_bytes / MiB:.1f} MiB above {bound / MiB:.1f} MiB"
    )


def test_phases_arrive_in_order_and_the_result_adds_up(runs: Callable[[str], Run]) -> None:
    run = runs("glibc")
    assert [p for p, _ in run.phases_seen] == list(PHASES)
    times = [t for _, t in run.phases_seen]
    assert times == sorted(times)
    r = run.result
    assert r.phase_t_s == dict(run.phases_seen)
    assert set(r.phase_mono_s) == set(PHASES)
    assert r.phase_mono_s["done"] <= time.monotonic()  # the same clock as ours
    assert r.threads == THREADS and r.live_bytes == LIVE and r.share == "shard"
    assert r.operations > 0 and 1.0 <= r.seconds < 4.0  # threads may stop late on a busy machine
    assert r.allocs_per_s == pytest.approx(r.operations / r.seconds, rel=1e-3)
    assert r.phase_t_s["idle"] - r.phase_t_s["churn"] == pytest.approx(r.seconds, abs=0.25)
    assert r.phase_t_s["done"] - r.phase_t_s["idle"] >= 0.2
    assert _pid_gone(r.pid)


def test_cpu_time_and_faults_cover_the_churn_phase_alone(runs: Callable[[str], Run]) -> None:
    r = runs("glibc").result
    assert r.cpus == len(os.sched_getaffinity(0)) and r.idle_s == 0.2
    # The churn's CPU time: some, and no more than its threads could use in its wall time.
    assert r.cpu_s > 0
    assert r.cpu_s <= min(r.threads, r.cpus) * r.seconds * 1.05 + 0.02
    assert r.allocs_per_cpu_s == pytest.approx(r.operations / (r.cpu_user_s + r.cpu_sys_s))
    # The whole run holds the churn and the fill (every page of the live set faulted in).
    assert r.run_cpu_user_s + r.run_cpu_sys_s >= r.cpu_s
    assert r.run_minor_faults >= r.minor_faults + LIVE // 4096 * 0.9
    assert r.run_major_faults >= r.major_faults >= 0


def test_checksums_are_hex_and_follow_the_seed(
    control_binary: Path, allocator_env: Callable[[str], dict[str, str]]
) -> None:
    def run(seed: int) -> ControlResult:
        return run_control_once(
            control_binary, env=allocator_env("glibc"), threads=2, live_bytes=8 * MiB,
            seconds=0.2, idle_s=0, seed=seed, timeout=30,
        )  # fmt: skip

    first, same, other = run(1), run(1), run(2)
    for r in (first, same, other):
        assert int(r.checksum, 16) != 0 and len(r.checksum) == 16
    # The churn's checksum depends on how many operations ran; the fill's only on the seed.
    assert first.fill_checksum == same.fill_checksum
    assert other.fill_checksum != first.fill_checksum
    assert other.checksum != first.checksum


def test_a_timeout_kills_the_program(
    control_binary: Path, allocator_env: Callable[[str], dict[str, str]]
) -> None:
    pids: list[int] = []
    start = time.monotonic()
    with pytest.raises(ControlTimeoutError, match="did not finish within 0.5 s"):
        run_control_once(
            control_binary, env=allocator_env("glibc"), threads=1, live_bytes=MiB,
            seconds=60, idle_s=0, timeout=0.5, on_start=pids.append,
        )  # fmt: skip
    assert time.monotonic() - start < 5
    assert _pid_gone(pids[0])


def test_an_interrupt_kills_the_program(
    control_binary: Path, allocator_env: Callable[[str], dict[str, str]]
) -> None:
    pids: list[int] = []

    def interrupt(phase: str, t_s: float) -> None:
        if phase == "churn":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_control_once(
            control_binary, env=allocator_env("glibc"), threads=1, live_bytes=MiB,
            seconds=60, idle_s=0, timeout=60, on_start=pids.append, on_phase=interrupt,
        )  # fmt: skip
    assert _pid_gone(pids[0])


def test_preexec_runs_in_the_child_before_exec(
    control_binary: Path, allocator_env: Callable[[str], dict[str, str]]
) -> None:
    def small_address_space() -> None:  # as a cgroup limit would, but only for this child
        resource.setrlimit(resource.RLIMIT_AS, (128 * MiB, 128 * MiB))

    with pytest.raises(ControlRunError, match="malloc returned NULL"):
        run_control_once(
            control_binary, env=allocator_env("glibc"), threads=1, live_bytes=512 * MiB,
            seconds=1, idle_s=0, timeout=30, preexec=small_address_space,
        )  # fmt: skip


def test_a_failing_preexec_is_a_clear_error(control_binary: Path) -> None:
    def refuse() -> None:
        raise OSError("no cgroup for you")

    with pytest.raises(ControlRunError, match="cannot start the control"):
        run_control_once(
            control_binary, env={}, threads=1, live_bytes=MiB, seconds=1, idle_s=0,
            timeout=10, preexec=refuse,
        )  # fmt: skip


def test_a_failing_program_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "churn"
    fake.write_text("#!/bin/sh\necho 'out of luck' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ControlRunError, match="exit code 1") as info:
        run_control_once(fake, env={}, threads=1, live_bytes=MiB, seconds=1, idle_s=0, timeout=10)
    assert "out of luck" in str(info.value)


def test_a_program_without_a_result_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "churn"
    fake.write_text('#!/bin/sh\necho \'{"event":"phase","phase":"fill","t_s":0}\'\n')
    fake.chmod(0o755)
    with pytest.raises(ControlRunError, match="without a result line"):
        run_control_once(fake, env={}, threads=1, live_bytes=MiB, seconds=1, idle_s=0, timeout=10)


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus", "1"],
        ["--threads", "0"],
        ["--threads", "four"],
        ["--seconds", "-1"],
        ["--seconds", "0"],
        ["--idle-s", "-0.5"],
        ["--live-bytes", "0"],
        ["--seed", "-3"],
        ["--min-bytes", "70000", "--max-bytes", "65536"],
        ["--share", "nobody"],
        ["--seconds"],
        ["positional"],
    ],
)
def test_bad_arguments_exit_2_with_usage(control_binary: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        [str(control_binary), *argv], capture_output=True, text=True, timeout=10, check=False
    )
    assert proc.returncode == 2
    assert "usage: churn" in proc.stderr
    assert proc.stdout == ""


def test_help_prints_usage_and_succeeds(control_binary: Path) -> None:
    proc = subprocess.run(
        [str(control_binary), "--help"], capture_output=True, text=True, timeout=10, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: churn")
