"""bench.experiments.loadstages: the load's stages on a repeat's clock, the memory samples
labelled with them, and each stage summed up (pure, on samples whose answer is known)."""

from __future__ import annotations

import pytest

from bench.experiments.loadstages import saturated_stage, spans, stage_rows, tag
from bench.measure.sampler import Sample
from bench.spec.models import ServiceSpec

SERVICE = ServiceSpec(
    warmup_s=2,
    stages=[
        {"name": "steady", "rate": 100, "duration_s": 10},
        {"name": "burst", "rate": 300, "duration_s": 10, "ramp_s": 4},
        {"rate": 20, "duration_s": 10},
    ],
)


def _sample(t: float, mb: float, phase: str = "load") -> Sample:
    return Sample(t_s=t, phase=phase, anon_bytes=int(mb * 2**20), late_s=0.0)


def test_spans_run_back_to_back_from_the_load_start():
    found = spans(SERVICE, 5.0)
    assert [(s.number, s.name, s.start_s, s.end_s) for s in found] == [
        (1, "steady", 5.0, 15.0),
        (2, "burst", 15.0, 25.0),
        (3, "stage3", 25.0, 35.0),
    ]
    assert found[1].rate_at(15.0) == 100 and found[1].rate_at(17.0) == 200
    assert found[1].rate_at(20.0) == 300


def test_memory_rows_get_their_stage_and_the_rate_then_only_within_the_load():
    rows = [
        {"t_s": 4.0, "phase": "warmup"},
        {"t_s": 16.0, "phase": "load"},
        {"t_s": 34.9, "phase": "load"},
        {"t_s": 36.0, "phase": "idle"},
    ]
    tag(rows, spans(SERVICE, 5.0))
    assert [(r["stage"], r["stage_rate"]) for r in rows] == [
        (None, None),
        (2, 150.0),
        (3, 20.0),
        (None, None),
    ]


def test_each_stage_is_summed_up_from_its_own_samples_and_requests():
    samples = [_sample(t, mb) for t, mb in [(5, 100), (10, 120), (14, 130), (20, 200), (24, 180)]]
    samples += [_sample(30, 150), _sample(34, 140), _sample(36, 135, "idle")]
    requests = [
        {"stage": 1, "intended_s": 6.0, "done_s": 6.002, "status": 200},
        {"stage": 1, "intended_s": 7.0, "done_s": 7.004, "status": 200},
        {"stage": 2, "intended_s": 16.0, "done_s": None, "status": 0},
    ]
    rows = stage_rows(spans(SERVICE, 5.0), samples, requests, 10.0, allocator="glibc", repeat=0)
    assert [(r["start_anon_bytes"] >> 20, r["end_anon_bytes"] >> 20) for r in rows] == [
        (100, 130),
        (130, 180),
        (180, 140),
    ]
    assert [r["peak_anon_bytes"] >> 20 for r in rows] == [130, 200, 150]
    assert [(r["requests"], r["errors"]) for r in rows] == [(2, 0), (1, 1), (0, 0)]
    assert rows[0]["achieved_rps"] == pytest.approx(0.2)
    assert rows[1]["p99_ms"] == pytest.approx(10_000)  # a failure is charged the timeout
    # a repeat that ended within the second stage counts only what ran
    cut = stage_rows(
        spans(SERVICE, 5.0), samples, requests, 10.0, allocator="glibc", repeat=0, ended_s=20.0
    )
    assert [r["end_s"] for r in cut] == [15.0, 20.0]


def test_a_stage_the_app_could_not_hold_is_saturated_though_the_mean_was_held():
    found = spans(SERVICE, 0.0)
    # steady 10 s at 100/s, a burst ramping 100 -> 300 over 4 s then 300 (2,600 due), 20/s
    rows = [{"stage": 1, "status": 200}] * 1000 + [{"stage": 3, "status": 200}] * 200
    held = [{"stage": 2, "status": 200}] * 2600
    assert saturated_stage(found, rows + held) is None
    # the app answered 1,500 of the burst's requests; 1,100 timed out
    cut = [{"stage": 2, "status": 200}] * 1500 + [{"stage": 2, "status": 0}] * 1100
    why = saturated_stage(found, rows + cut)
    assert why is not None
    assert why.startswith("saturated in stage burst: the app served 150 of 260 requests a second")
    # one stage: the whole load's rule judges it
    assert saturated_stage(found[:1], [{"stage": 1, "status": 0}] * 1000) is None
