"""Downsampling keeps the staircase's steps; phase spans come from the samples."""

from __future__ import annotations

from bench.report.series import keep_changes, phase_spans, thin, value_at


def stairs(n: int, step_every: int) -> list[tuple[float, float]]:
    return [(float(t), float(100 + 10 * (t // step_every))) for t in range(n)]


def test_keep_changes_keeps_both_ends_of_every_step():
    pts = stairs(30, 10)
    kept = keep_changes(pts)
    assert kept[0] == pts[0] and kept[-1] == pts[-1]
    assert (9.0, 100.0) in kept and (10.0, 110.0) in kept
    assert (19.0, 110.0) in kept and (20.0, 120.0) in kept
    assert len(kept) == 6


def test_keep_changes_of_tiny_series():
    assert keep_changes([]) == []
    assert keep_changes([(0.0, 1.0)]) == [(0.0, 1.0)]


def test_thin_respects_the_budget():
    noisy = [(float(t), float(t % 7)) for t in range(5000)]
    assert len(thin(noisy, 400)) <= 401
    assert thin(noisy, 400)[-1] == noisy[-1]
    flat = stairs(780, 60)
    assert thin(flat, 800) == flat  # under budget: untouched
    assert len(thin(flat, 600)) == 2 * 13  # over budget: only the step ends remain


def test_phase_spans_median_over_allocators():
    rows = [
        {"experiment": "service", "allocator": a, "repeat": 0, "t_s": t, "phase": p}
        for a, shift in (("x", 0.0), ("y", 1.0), ("z", 0.0))
        for t, p in (
            (0.0 + shift, "warmup"),
            (10.0 + shift, "load"),
            (20.0 + shift, "load"),
            (21.0 + shift, "idle"),
        )
    ]
    spans = {s.phase: s for s in phase_spans(rows, "service")}
    assert list(spans) == ["warmup", "load", "idle"]
    assert spans["load"].start_s == 10.0 and spans["load"].end_s == 20.0


def test_value_at_window():
    pts = stairs(30, 10)
    assert value_at(pts, 0, 5) == 100.0
    assert value_at(pts, 100, 200) is None
