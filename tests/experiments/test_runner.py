"""`allocstudy run` end to end with real processes, and what it leaves behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from studyrun import (
    ROOT,
    TINY_SPEC,
    BackgroundRun,
    our_processes,
    premise_cgroups,
    premise_thp_was_changed,
    run_cli,
    stray_cgroups,
)

from bench.measure import runstats
from bench.measure.groups import cgroup_support
from bench.measure.machine import thp_mode
from bench.results.manifest import ManifestError, read_manifest
from bench.results.rundir import read_rows
from bench.run import rounds as runner
from bench.run import signals
from bench.spec import parse_spec

pytestmark = pytest.mark.real_run

SPEC = parse_spec(TINY_SPEC)


def test_run_writes_every_table_of_the_data_contract(tiny_run: Path):
    for name in (
        "manifest.json",
        "memory.arrow",
        "requests.arrow",
        "control.arrow",
        "summary.arrow",
    ):
        assert (tiny_run / name).is_file(), name
    assert (tiny_run.parent / "latest").resolve() == tiny_run.resolve()
    assert not [p for p in tiny_run.iterdir() if p.name.startswith(".")], "temporary files left"


def test_manifest_records_spec_host_confounds_and_allocators(tiny_run: Path):
    m = read_manifest(tiny_run)
    assert m["status"] == "complete" and m["spec_sha256"] == SPEC.spec_hash
    assert m["host"]["cores"] == os.cpu_count()
    c = m["confounds"]
    assert {"thp", "swap_bytes", "governor", "cgroup_mode", "cpu_pressure"} <= set(c)
    assert c["cgroup_mode"] == cgroup_support().mode
    assert [a["name"] for a in m["allocators"]] == ["glibc", "jemalloc"]
    for a in m["allocators"]:
        assert a["status"] == "ok", a["reason"]
        assert a["version"]
        assert a["sha256"] and len(a["sha256"]) == 64


def test_allocator_is_proven_in_every_worker_and_the_control(tiny_run: Path):
    m = read_manifest(tiny_run)
    for a in m["allocators"]:
        workers = [e for e in a["evidence"]["service"] if e["role"] == "worker"]
        assert len(workers) == SPEC.service.workers
        for e in workers:
            assert os.path.realpath(e["malloc_library"]) == a["expected_library"]
            assert e["mapped"] is True
        assert all(e["mapped"] for e in a["evidence"]["service"])
        assert len(a["evidence"]["control"]) == SPEC.control.repeats
        for e in a["evidence"]["control"]:
            assert os.path.realpath(e["malloc_library"]) == a["expected_library"]
    jemalloc = m["allocators"][1]
    assert "libjemalloc" in jemalloc["evidence"]["service"][-1]["malloc_library"]


def test_one_memory_sample_per_interval_and_every_phase(tiny_run: Path):
    rows = read_rows(tiny_run)
    m = read_manifest(tiny_run)
    s = SPEC.service
    reclaim = m["method"]["reclaim"]["possible"]
    for a in m["allocators"]:
        phases = {p["phase"]: p for p in a["phases"]["service"]}
        assert {"start", "warmup", "load", "idle"} <= set(phases)
        assert ("reclaim" in phases) == reclaim  # a reclaim phase only where one can run
        mem = [
            r
            for r in rows["memory"]
            if r["allocator"] == a["name"] and r["experiment"] == "service"
        ]
        for name in ("load", "idle"):
            span = phases[name]["end_s"] - phases[name]["start_s"]
            got = sum(1 for r in mem if r["phase"] == name)
            assert abs(got - span / s.sample_interval_s) <= 1.5, (name, got, span)
        assert any(r["phase"] == "reclaim" for r in mem) == reclaim
        times = [r["t_s"] for r in mem]
        assert times == sorted(times)
        assert all(r["anon_bytes"] > 0 for r in mem if r["phase"] != "start")
        control_phases = {p["phase"] for p in a["phases"]["control"]}
        assert {"fill", "churn", "idle"} <= control_phases


def test_requests_follow_the_open_loop_schedule(tiny_run: Path):
    rows = read_rows(tiny_run)
    s = SPEC.service
    for name in ("glibc", "jemalloc"):
        load = [r for r in rows["requests"] if r["allocator"] == name and r["phase"] == "load"]
        assert abs(len(load) - s.rate * s.load_s) <= 1
        gaps = sorted(
            b["intended_s"] - a["intended_s"]
            for a, b in zip(
                sorted(load, key=lambda r: r["intended_s"]),
                sorted(load, key=lambda r: r["intended_s"])[1:],
                strict=False,
            )
        )
        assert gaps[len(gaps) // 2] == pytest.approx(1 / s.rate, rel=1e-6)
        ok = [r for r in load if r["status"] == 200]
        assert len(ok) >= 0.98 * len(load)
        assert {r["endpoint"] for r in load} == {"churn", "json", "xml"}


def test_summary_equals_values_recomputed_from_the_raw_tables(tiny_run: Path):
    rows = read_rows(tiny_run)
    m = read_manifest(tiny_run)
    s = SPEC.service
    for a in m["allocators"]:
        name = a["name"]
        (summary,) = [
            r for r in rows["summary"] if r["allocator"] == name and r["experiment"] == "service"
        ]
        phases = {p["phase"]: p for p in a["phases"]["service"]}
        mem = [r for r in rows["memory"] if r["allocator"] == name and r["experiment"] == "service"]
        t = [r["t_s"] for r in mem]
        v = [r["anon_bytes"] for r in mem]
        assert summary["peak_anon_bytes"] == runstats.peak(
            t, v, phases["load"]["start_s"], phases["load"]["end_s"]
        )
        assert summary["settled_anon_bytes"] == runstats.settled(
            t, v, phases["idle"]["end_s"], s.settle_window_s
        )
        load = [r for r in rows["requests"] if r["allocator"] == name and r["phase"] == "load"]
        lat = sorted(
            (r["done_s"] - r["intended_s"]) * 1000
            if r["status"] == 200
            else max(s.request_timeout_s * 1000, ((r["done_s"] or 0) - r["intended_s"]) * 1000)
            for r in load
        )
        failed = sum(1 for r in load if r["status"] != 200)
        assert summary["p99_ms"] == pytest.approx(runstats.percentile(lat, 99))
        assert summary["p50_ms"] == pytest.approx(runstats.percentile(lat, 50))
        assert summary["requests"] == len(load) and summary["errors"] == failed
        assert summary["achieved_rps"] == pytest.approx((len(load) - failed) / s.load_s)
        live = {e["at"]: e["live_bytes"] for e in a["live_set"]}
        assert summary["overhead_peak"] == pytest.approx(
            (summary["peak_anon_bytes"] - summary["ready_anon_bytes"])
            / (live["load_end"] - live["ready"])
        )
        assert summary["load_end_live_bytes"] == live["load_end"]
        controls = [r for r in rows["control"] if r["allocator"] == name]
        assert len(controls) == SPEC.control.repeats
        for row in controls:
            assert row["allocs_per_s"] > 0 and row["operations"] > 0
            assert row["peak_anon_bytes"] > 0.5 * SPEC.control_live_bytes


def _dispositions(stop: signal.Signals) -> None:
    """The signal dispositions of the child, set here, never inherited from whoever started
    the suite: SIGINT ignored, as a shell does for a background job (so `run` must install its
    own handler instead of trusting the one it inherited); SIGTERM and SIGHUP at their default,
    which would kill the run without its clean-up."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.mark.parametrize(
    "stop",
    [
        signal.SIGINT,  # Ctrl-C, in make test; the other two take the same path
        pytest.param(signal.SIGTERM, marks=pytest.mark.slow),
        pytest.param(signal.SIGHUP, marks=pytest.mark.slow),
    ],
    ids=lambda s: s.name,
)
def test_a_signal_mid_run_keeps_the_partial_run_and_leaves_no_process_cgroup_or_temp_file(
    stop: signal.Signals, tmp_path: Path
):
    spec = tmp_path / "long.yaml"
    spec.write_text(TINY_SPEC.replace("load_s: 5", "load_s: 60"))
    out = tmp_path / "results"
    tmp = tmp_path / "tmp"  # the run's temporary files, and only its, land here
    tmp.mkdir()
    mark = f"{tmp_path.name}-{stop.name}"
    thp_before = thp_mode()
    before = set(stray_cgroups())
    run = BackgroundRun(
        str(spec),
        "--out",
        str(out),
        env_mark=mark,
        env={**os.environ, "TMPDIR": str(tmp)},
        preexec_fn=lambda: _dispositions(stop),
    )
    try:
        assert run.wait_for("glibc service: load", timeout=90), "".join(run.stderr)[-2000:]
        time.sleep(2)
        os.killpg(run.proc.pid, stop)
        code, stdout, stderr = run.finish(timeout=30)
    finally:
        run.kill()
    assert code == 130, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    time.sleep(0.5)
    assert our_processes(mark) == []
    assert set(stray_cgroups()) == before
    run_dir = Path(stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    assert m["status"] == "incomplete"
    assert m["allocators"][0]["status"] == "incomplete"
    partial = read_rows(run_dir)  # what the interrupted repeat measured is kept
    assert {r["phase"] for r in partial["memory"]} >= {"start", "warmup", "load"}
    assert partial["requests"], stderr[-3000:]  # the generator's rows, written as it stopped
    assert not partial["summary"]
    assert {p["phase"] for p in m["allocators"][0]["phases"]["service"]} >= {"warmup", "load"}
    assert not (out / "tiny" / "latest").exists()
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".")]
    assert list(tmp.iterdir()) == []
    premise_cgroups()  # else the cgroup checks above compared two empty sets
    thp = m["confounds"]["thp"]
    premise_thp_was_changed(thp_before)
    assert (thp["before"], thp["during"], thp["restored"]) == (thp_before, "never", True)
    assert thp_mode() == thp_before


def test_an_ignored_sighup_stays_ignored_as_nohup_asks():
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with signals.sigterm_as_interrupt():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


def test_a_signal_whose_raise_was_lost_is_raised_again_at_the_next_wait():
    """Python drops an exception raised in a fork hook or a finaliser (a Ctrl-C landing while
    subprocess starts a child with a preexec_fn); the run's waits raise it again."""
    with signals.sigterm_as_interrupt():
        signals.raise_if_interrupted()  # nothing asked the run to stop yet
        handler = signal.getsignal(signal.SIGINT)
        assert callable(handler)
        try:  # the handler raises where Python swallows the exception
            handler(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass
        with pytest.raises(KeyboardInterrupt, match="SIGINT"):
            signals.raise_if_interrupted()
        with signals.signals_held():  # the stop under way: its own waits go on
            signals.raise_if_interrupted()
    signals.raise_if_interrupted()  # and a later run starts clean


def _measuring(out: Path) -> bool:
    """Whether the run under `out` has begun to measure an allocator."""
    with contextlib.suppress(OSError, ValueError, ManifestError):
        for manifest in out.glob("*/*/manifest.json"):
            if any(a["status"] == "running" for a in read_manifest(manifest.parent)["allocators"]):
                return True
    return False


def test_a_second_run_refuses_to_start_while_one_measures_unless_told_to_wait(tmp_path: Path):
    base = TINY_SPEC + "machine: {set_confounds: false}\n"
    long_spec, short_spec = tmp_path / "long.yaml", tmp_path / "short.yaml"
    long_spec.write_text(base.replace("load_s: 5", "load_s: 60"))
    short_spec.write_text(base.replace("load_s: 5", "load_s: 2"))
    env = {**os.environ, "ALLOCSTUDY_LOCK": str(tmp_path / "run.lock")}

    def start(spec: Path, out: str, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bench", "run", str(spec), "--out", str(tmp_path / out),
             "--no-control", *extra],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip

    first = start(long_spec, "first")
    waiting: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list(
            (tmp_path / "first").glob("*/*/manifest.json")
        ):
            time.sleep(0.25)
        second = run_cli("run", str(short_spec), "--out", str(tmp_path / "second"), env=env)
        assert second.returncode == 4, second.stderr
        assert f"another allocstudy run is measuring on this machine (pid {first.pid}, started" in (
            second.stderr
        )
        assert "Traceback" not in second.stderr and not (tmp_path / "second").exists()
        waiting = start(short_spec, "third", "--wait")
        time.sleep(3)
        assert waiting.poll() is None  # still waiting for the first run
        assert not (tmp_path / "third").exists()  # and nothing of it started
        os.killpg(first.pid, signal.SIGINT)
        assert first.wait(timeout=30) == 130
        # the lock passes to the waiting run, which starts measuring its first allocator (it
        # is stopped there; a whole run adds nothing the other tests do not check)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _measuring(tmp_path / "third"):
            assert waiting.poll() is None, waiting.communicate()[1][-2000:]
            time.sleep(0.25)
        os.killpg(waiting.pid, signal.SIGINT)
        out, err = waiting.communicate(timeout=60)
        assert waiting.returncode == 130, err[-2000:]
        assert "waiting for the run that holds this machine" in err
        (manifest,) = (tmp_path / "third").glob("*/*/manifest.json")
        assert read_manifest(manifest.parent)["status"] == "incomplete"
    finally:
        for proc in (first, waiting):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow  # 8 s; an allocator failing alone: test_runner_faults
def test_broken_allocator_fails_alone_and_exit_code_is_3(tmp_path: Path):
    broken = tmp_path / "libbroken.so"
    broken.write_bytes(b"not an ELF file")
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        TINY_SPEC.replace(
            "allocators: [glibc, jemalloc]",
            f"allocators: [{{name: broken, library: {broken}}}, glibc, mimalloc-bun]",
        )
        .replace("load_s: 5", "load_s: 2")
        .replace("repeats: 2", "repeats: 1")
    )
    out = tmp_path / "results"
    proc = run_cli("run", str(spec), "--out", str(out), "--no-control")
    assert proc.returncode == 3, proc.stderr[-2000:]
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    m = read_manifest(run_dir)
    status = {a["name"]: (a["status"], a["reason"]) for a in m["allocators"]}
    assert status["broken"][0] == "failed"
    assert "preload" in status["broken"][1]
    assert status["glibc"][0] == "ok"
    assert status["mimalloc-bun"][0] in ("skipped", "ok")
    rows = read_rows(run_dir)
    assert {r["allocator"] for r in rows["summary"]} == {"glibc"} | (
        {"mimalloc-bun"} if status["mimalloc-bun"][0] == "ok" else set()
    )


def test_only_with_an_unknown_name_is_a_usage_error(tiny_spec: Path, tmp_path: Path):
    proc = run_cli("run", str(tiny_spec), "--out", str(tmp_path), "--only", "hoard")
    assert proc.returncode == 2
    assert "hoard" in proc.stderr and "Traceback" not in proc.stderr


def test_the_load_reached_every_worker_and_is_recorded(tiny_run: Path):
    m = read_manifest(tiny_run)
    for a in m["allocators"]:
        (loadgen,) = a["loadgen"]
        workers = loadgen["per_worker"]
        assert len(workers) == SPEC.service.workers
        assert all(w["churn_calls"] > 0 for w in workers), workers
        assert all(0 < w["live_count"] <= SPEC.service.churn.live_buffers for w in workers)
        assert loadgen["cpu_pct"] is not None and loadgen["send_late_p99_ms"] is not None
        assert a["wall_s"]["service"] and len(a["wall_s"]["control"]) == SPEC.control.repeats


def test_memory_is_sampled_from_the_launch_and_climbs_under_load(tiny_run: Path):
    rows = read_rows(tiny_run)
    m = read_manifest(tiny_run)
    for a in m["allocators"]:
        mem = [
            r
            for r in rows["memory"]
            if r["allocator"] == a["name"] and r["experiment"] == "service"
        ]
        (summary,) = [
            r
            for r in rows["summary"]
            if r["allocator"] == a["name"] and r["experiment"] == "service"
        ]
        # the first sample is the launch's, whatever a busy machine's clock says: in the
        # start phase, before the workers imported anything
        assert mem[0]["phase"] == "start"
        assert mem[0]["anon_bytes"] < 0.5 * summary["ready_anon_bytes"]
        load = [r["anon_bytes"] for r in mem if r["phase"] == "load"]
        assert load[-1] > load[0]  # the live set is built by the load: memory climbs


def test_the_live_payload_rises_across_the_load_phase(tiny_run: Path):
    rows = read_rows(tiny_run)
    m = read_manifest(tiny_run)
    for a in m["allocators"]:
        live = {e["at"]: e["live_bytes"] for e in a["live_set"]}
        # the load builds the live set; in idle the short-lived buffers expire, nothing is added
        assert live["ready"] < live["idle_end"] <= live["load_end"]
        churn = sorted(
            (r["done_s"], r["worker"], r["live_bytes"])
            for r in rows["requests"]
            if r["allocator"] == a["name"] and r["endpoint"] == "churn" and r["phase"] == "load"
        )
        assert churn and all(w is not None and b is not None for _, w, b in churn)
        latest: dict[int, int] = {}
        totals = []
        for _, worker, nbytes in churn:
            latest[worker] = nbytes
            totals.append(sum(latest.values()))
        half = len(totals) // 2
        assert max(totals[half:]) > max(totals[:half])


def test_idle_traffic_is_the_specs_and_the_runners_calls_avoid_the_settle_window(
    tiny_run: Path,
):
    rows = read_rows(tiny_run)
    m = read_manifest(tiny_run)
    s = SPEC.service
    assert m["method"]["idle_rate"] == s.idle_rate
    for a in m["allocators"]:
        idle = [r for r in rows["requests"] if r["allocator"] == a["name"] and r["phase"] == "idle"]
        assert {r["endpoint"] for r in idle} == {"health"}
        assert abs(len(idle) - s.idle_rate * s.idle_s) <= 1
        phases = {p["phase"]: p for p in a["phases"]["service"]}
        window = (phases["idle"]["end_s"] - s.settle_window_s, phases["idle"]["end_s"])
        (sampler,) = a["sampler"]
        calls = sampler["stats_calls"]
        assert [c["at"] for c in calls] == ["ready", "load_end", "idle_end"]
        assert all(c["end_s"] <= window[0] or c["start_s"] >= window[1] for c in calls)
        assert sampler["reclaim_ran"] == m["method"]["reclaim"]["possible"]


def test_repeats_run_in_rounds_with_a_rotated_order(tiny_run: Path):
    m = read_manifest(tiny_run)
    rounds = max(SPEC.repeats, SPEC.control.repeats)
    assert [o["allocators"] for o in m["order"]] == [
        runner.rotated(["glibc", "jemalloc"], r) for r in range(rounds)
    ]
    assert runner.rotated(["glibc", "jemalloc"], 1) == ["jemalloc", "glibc"]


def test_the_aa_duplicate_lands_at_a_drawn_place_never_beside_its_twin():
    from bench.run.rounds import round_order

    names = ["glibc", "jemalloc", "tcmalloc", "mimalloc-v2", "mimalloc-v3", "glibc-again"]
    twins = {"glibc-again": "glibc"}
    orders = [round_order(names, r, twins=twins, seed=7) for r in range(12)]
    for order in orders:
        assert sorted(order) == sorted(names)
        i, j = order.index("glibc"), order.index("glibc-again")
        assert abs(i - j) > 1
    # the others keep their rotation; the duplicate's place varies over the rounds
    assert [n for n in orders[1] if n != "glibc-again"] == names[1:5] + names[:1]
    assert len({o.index("glibc-again") for o in orders}) > 2
    # the same seed draws the same places: the order is reproducible, and recorded
    assert orders == [round_order(names, r, twins=twins, seed=7) for r in range(12)]
    assert round_order(["glibc", "glibc-again"], 0, twins=twins) == ["glibc", "glibc-again"]
