"""The service experiment's method flags: pure, so every reason has a test of its own."""

from __future__ import annotations

from bench.experiments.service import method_flags


def _flags(**over: object) -> list[str]:
    args: dict[str, object] = {
        "times": [float(t) for t in range(0, 41)],
        "load": (5.0, 25.0),
        "idle": (25.0, 40.0),
        "settle_window_s": 5.0,
        "interval_s": 1.0,
        "failed": 0,
        "requests": 400,
        "timeout_s": 10.0,
        "calls": [{"at": "load_end", "start_s": 25.0, "end_s": 25.1}],
    }
    args.update(over)
    return method_flags(**args)  # type: ignore[arg-type]


def test_a_clean_repeat_has_no_flag():
    assert _flags() == []


def test_failed_requests_flag_the_repeat():
    (flag,) = _flags(failed=3)
    assert flag == "3 of 400 load requests failed (counted at 10 s or more)"


def test_missing_samples_in_the_peak_or_settle_window_flag_the_repeat():
    times = [t for t in range(0, 41) if not 10 <= t <= 14]
    assert any("peak window" in f for f in _flags(times=times))
    times = [t for t in range(0, 36)]
    assert any("settle window" in f for f in _flags(times=times))


def test_a_runner_call_inside_the_settle_window_flags_the_repeat():
    calls = [{"at": "idle_end", "start_s": 37.0, "end_s": 37.1}]
    assert any("fell in the settle window" in f for f in _flags(calls=calls))


def test_a_repeat_without_phases_says_so():
    flags = _flags(load=None, idle=None)
    assert "no load phase was recorded" in flags and "no idle phase was recorded" in flags
