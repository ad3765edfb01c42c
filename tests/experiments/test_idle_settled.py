"""An idle that ends once memory has settled, for real: each allocator idles as long as its
own return timers (read back in its processes) ask, and every repeat records how it settled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from studyrun import TINY_SPEC, run_cli

from bench.allocators import timers
from bench.results.tables import read_table

SETTLED_SPEC = (
    TINY_SPEC.replace("allocators: [glibc, jemalloc]", "allocators: [glibc, mimalloc-v3]")
    .replace("  idle_s: 3\n", "  idle_ends: settled\n  idle_min_s: 1.5\n  idle_s: 20\n")
    .replace("  idle_s: 1\n  repeats: 2\n", "  idle_s: match-service\n  repeats: 1\n")
)


@pytest.mark.real_run
@pytest.mark.slow  # 25 s; the stop rule: test_the_idle_waits_out_a_fall_and_stops_once_flat
def test_each_allocator_idles_until_settled_after_its_own_timers(tmp_path: Path):
    assert "idle_ends: settled" in SETTLED_SPEC and "mimalloc-v3" in SETTLED_SPEC
    spec = tmp_path / "tiny.yaml"
    spec.write_text(SETTLED_SPEC)
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "results"), "--no-control", "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = Path(proc.stdout.strip().splitlines()[-1])
    manifest = json.loads((run / "manifest.json").read_text())
    by_name = {a["name"]: a for a in manifest["allocators"]}
    # the timers as read back: glibc has none, mimalloc v3 purges after a delay
    assert [t["setting"] for t in by_name["glibc"]["timers"]] == ["M_TRIM_THRESHOLD"]
    (purge,) = [t for t in by_name["mimalloc-v3"]["timers"] if t["setting"] == "purge_delay"]
    assert purge["seconds"] and purge["seconds"] > 0
    least = {n: by_name[n]["sampler"][0]["idle"]["least_s"] for n in by_name}
    assert least["glibc"] == 1.5
    assert least["mimalloc-v3"] == max(1.5, timers.HORIZON_FACTOR * purge["seconds"])
    rows = {r["allocator"]: r for r in read_table(run / "summary.arrow", "summary").to_pylist()}
    for name, r in rows.items():
        # ended once settled: after its least idle, long before the 20 s most
        assert least[name] - 0.1 <= r["idle_run_s"] < 15, (name, r["idle_run_s"])
        assert r["still_falling"] is False and r["settle_time_s"] is not None
        assert r["settle_time_s"] <= r["idle_run_s"]
    # the probes end with the idle: those in flight are answered, none is cut short
    idle = [
        r
        for r in read_table(run / "requests.arrow", "requests").to_pylist()
        if r["phase"] == "idle"
    ]
    assert idle and all(r["status"] == 200 and r["error"] is None for r in idle)
    # the kernel's high-water mark of the load, where a memory cgroup held the service
    if manifest["confounds"].get("cgroup_mode") in ("v1", "v2"):
        assert all(r["load_peak_charged_bytes"] for r in rows.values())


def test_the_idle_waits_out_a_fall_and_stops_once_flat():
    """The stop rule on a real sampler: memory falls for 0.6 s, then holds; the idle may end
    only after its least and once a whole window is flat, and it ends well before its most."""
    import time

    from bench.experiments.service import wait_settled
    from bench.measure.sampler import Sampler

    start = time.monotonic()

    def memory() -> int:
        elapsed = time.monotonic() - start
        return int(500e6 - 100e6 * min(elapsed, 0.6) / 0.6)  # 500 MB falling to 400, held

    sampler = Sampler(read=memory, interval_s=0.05, origin=start, phase="idle").start()
    try:
        took = wait_settled(sampler, start, start, least_s=0.2, most_s=20.0, window_s=0.3)
    finally:
        sampler.stop()
    assert took >= 0.6 + 0.3  # the fall, then one flat window
    assert took < 10.0  # ended by the rule, not by the most


def test_the_settle_window_begins_after_the_runners_own_call():
    """Memory flat from the start: the idle still ends no sooner than a whole window after the
    runner's /stats call at its start had ended, so the settled value is never read over it
    (a burst run's tcmalloc was flagged for that when its least idle equalled the window)."""
    import time

    from bench.experiments.service import wait_settled
    from bench.measure.sampler import Sampler

    start = time.monotonic()
    sampler = Sampler(read=lambda: 400_000_000, interval_s=0.05, origin=start, phase="idle")
    sampler.start()
    try:
        took = wait_settled(
            sampler, start, start, least_s=0.3, most_s=20.0, window_s=0.3, quiet_s=0.6
        )
    finally:
        sampler.stop()
    assert 0.6 + 0.3 <= took < 10.0


def test_the_idle_ends_at_its_most_while_memory_still_falls():
    import time

    from bench.experiments.service import wait_settled
    from bench.measure.sampler import Sampler

    start = time.monotonic()
    sampler = Sampler(
        read=lambda: int(500e6 - 50e6 * (time.monotonic() - start)),  # 10% a second, on
        interval_s=0.05,
        origin=start,
        phase="idle",
    ).start()
    try:
        took = wait_settled(sampler, start, start, least_s=0.2, most_s=1.5, window_s=0.3)
    finally:
        sampler.stop()
    assert 1.5 <= took < 3.0


def test_the_plan_estimates_each_allocators_idle_from_its_timers():
    from studyrun import ROOT

    from bench.experiments.plan import plan_cells
    from bench.spec import load_spec

    spec = load_spec(ROOT / "specs" / "quick.yaml")
    cells = plan_cells(spec)
    idle = {
        c.cell.allocator: dict(c.phases)["idle"] for c in cells if c.cell.experiment == "service"
    }
    assert idle["jemalloc"] == 30.5  # three times its 10 s decay, then one flat window
    assert idle["glibc"] == idle["tcmalloc"] == 6.5  # the spec's least: no timer
    assert idle["mimalloc-bun"] == 60  # never read back here: the most
    for r in range(spec.repeats):
        order = [
            c.cell.allocator for c in cells if c.cell.repeat == r and c.cell.experiment == "service"
        ]
        assert abs(order.index("glibc") - order.index("glibc-again")) > 1
