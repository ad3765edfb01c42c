"""Memory accounting against real processes: the cgroup a program joins, or procfs."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.allocators.verification import library_mapped
from bench.experiments.harness import preexec_for
from bench.measure.groups import ProcfsGroup, cgroup_support, create_group, process_tree, pss_anon
from bench.measure.sampler import Sampler

HOLD = (
    "import sys, time; b = bytearray(int(sys.argv[1])); b[::4096] = b'x' * len(b[::4096]);"
    " print('ready', flush=True); time.sleep(30)"
)


def _start_holder(nbytes: int, preexec=None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(nbytes)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("mode", ["auto", "none"])
def test_group_sees_the_anonymous_memory_of_a_program_that_joined_it(mode: str):
    group = create_group("test", mode=mode)
    proc = None
    try:
        proc = _start_holder(64 * 2**20, preexec_for(group, None))
        if isinstance(group, ProcfsGroup):
            group.root_pid = proc.pid
        assert proc.pid in group.pids()
        anon = group.anon_bytes()
        assert 64 * 2**20 <= anon < 64 * 2**20 + 64 * 2**20
    finally:
        if proc:
            proc.kill()
            proc.wait()
        group.close()


def test_closing_a_cgroup_kills_what_is_left_inside_and_removes_it():
    if cgroup_support().mode == "none":
        pytest.skip("no memory cgroup on this machine")
    group = create_group("test")
    path = group.path
    proc = _start_holder(2**20, preexec_for(group, None))
    group.close()
    assert proc.wait(timeout=5) != 0
    assert not path.exists()


def test_pss_anon_and_process_tree_of_this_process():
    assert pss_anon(__import__("os").getpid()) > 0
    assert pss_anon(2**22 + 12345) == 0
    assert process_tree(__import__("os").getpid())[0] == __import__("os").getpid()


def test_library_mapped_reads_proc_maps():
    import os

    from bench.allocators.registry import libc_path

    assert library_mapped(os.getpid(), libc_path()) is True
    assert library_mapped(os.getpid(), "/nonexistent/libx.so") is False
    assert library_mapped(2**22 + 12345, libc_path()) is None


def test_library_mapped_counts_an_exited_unreaped_process_as_gone():
    """A zombie's maps read empty; that is a process gone, not one off the allocator (a
    recycled worker exiting between its ready line and the check failed a CI run so)."""
    import os

    from bench.allocators.registry import libc_path

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.01)
        assert library_mapped(pid, libc_path()) is None
    finally:
        os.waitpid(pid, 0)


def test_sampler_keeps_an_absolute_schedule_and_tags_phases():
    values = iter(range(10**6))
    origin = time.monotonic()
    sampler = Sampler(read=lambda: next(values), interval_s=0.1, origin=origin, phase="a").start()
    time.sleep(0.55)
    sampler.phase = "b"
    time.sleep(0.5)
    samples = sampler.stop()
    # 11 slots; a busy machine may make the thread miss some, which it skips, never bursts
    assert 5 <= len(samples) <= 12
    assert {s.phase for s in samples} == {"a", "b"}
    slots = [(s.t_s - s.late_s) / 0.1 for s in samples]  # each taken for a slot of the grid
    assert all(k == pytest.approx(round(k), abs=1e-3) for k in slots)
    assert [round(k) for k in slots] == sorted({round(k) for k in slots})
    assert sampler.cpu_s < 0.5


def test_sampler_started_late_begins_at_the_next_slot():
    origin = time.monotonic() - 2.2
    sampler = Sampler(read=lambda: 1, interval_s=0.5, origin=origin).start()
    time.sleep(1.0)  # the slot at 2.5 s is due in 0.3 s; the rest is room for a busy machine
    samples = sampler.stop()
    assert samples and samples[0].t_s - samples[0].late_s == pytest.approx(2.5, abs=1e-3)


def test_sampler_records_read_errors_instead_of_dying():
    def fail() -> int:
        raise OSError("gone")

    sampler = Sampler(read=fail, interval_s=0.05, origin=time.monotonic()).start()
    time.sleep(0.5)
    sampler.stop()
    assert sampler.samples == [] and sampler.errors and "gone" in sampler.errors[0]


BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.8: pass\n"


def test_cpu_of_reaped_grandchildren_is_ours_not_other_work():
    """The disturbance account counts a grandchild's CPU as ours once its parent reaped it,
    which is why the runner stops the service gracefully (the supervisor reaps its workers)."""
    from bench.measure.machine import CpuAccount, own_cpu_s

    account = CpuAccount.start()
    # a child that starts a CPU-burning grandchild and waits for it
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])",
        ],
        check=True,
        timeout=60,
    )
    # Ours, whatever else the machine ran meanwhile (other work would count as foreign,
    # so foreign_pct alone cannot say where the grandchild's 0.8 s went on a shared machine).
    assert own_cpu_s() - account.own_s >= 0.75
    assert account.foreign_pct() is not None


@pytest.mark.parametrize(
    "mode",
    ["auto", pytest.param("none", marks=pytest.mark.slow)],  # none: 7 s, as auto
)
def test_the_group_follows_the_workers_that_replace_recycled_ones(mode: str):
    """A recycled worker's replacement is charged to the group (cgroup) or found in the tree
    (procfs) from its start: the memory series covers every generation of workers."""
    import http.client

    from service_support import SMALL_CONFIG, free_port

    from service.launcher import start_service

    group = create_group("test-recycling", mode=mode)
    config = dict(SMALL_CONFIG, workers=2, max_requests=40)

    def on_spawn(pid: int) -> None:
        if isinstance(group, ProcfsGroup):
            group.root_pid = pid

    service = None
    try:
        service = start_service(
            python=sys.executable,
            workers=2,
            port=free_port(),
            env={},
            service_config=config,
            cgroup_procs=group.procs_file,
            on_spawn=on_spawn,
        )
        deadline = time.monotonic() + 30
        while len(service.restarts()) < 3 and time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
            try:
                conn.request("GET", "/health", headers={"Connection": "close"})
                conn.getresponse().read()
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.02)
        deadline = time.monotonic() + 10
        # read the restarts again each time: a request in flight may recycle one more worker
        # after the loop above, and its replacement is as much a replacement as the others
        while (
            not (now := set(service.worker_pids()))
            <= (replacements := {r.new_pid for r in service.restarts()})
            or len(now) < 2
        ):
            assert time.monotonic() < deadline, (now, replacements)
            time.sleep(0.1)
        time.sleep(0.5)  # the replacements are ready and hold their start-up buffers
        assert now <= set(group.pids())
        assert group.anon_bytes() >= sum(pss_anon(pid) for pid in now) > 0
    finally:
        if service is not None:
            service.stop()
        group.close()
