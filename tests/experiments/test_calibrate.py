"""A rate the app can hold, found before measuring: the ramp's rules, its words, and a real
run that calibrates an app made slow on purpose and then holds the rate it found."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from studyrun import ROOT, run_cli

from bench.experiments.calibrate import Step, found_rate, ramp_rates, step_held
from bench.report.sections.calibration import calibration_sentence
from bench.results.tables import read_table


def test_the_ramp_doubles_up_to_its_top():
    assert ramp_rates(80.0, 4) == [10.0, 20.0, 40.0, 80.0]
    assert ramp_rates(5.0, 1) == [5.0]


def test_a_step_holds_on_its_pace_its_losses_and_its_p99():
    assert step_held(20.0, 5.0, 100, 100, 40.0, 1000.0)
    assert not step_held(20.0, 5.0, 100, 90, 40.0, 1000.0)  # 18/s answered, 10 lost
    assert not step_held(20.0, 5.0, 100, 100, 1500.0, 1000.0)  # p99 over the bound
    assert not step_held(20.0, 5.0, 0, 0, None, 1000.0)  # nothing sent says nothing


def test_the_rate_found_is_the_last_held_before_the_first_miss():
    steps = [
        Step(10, 50, 50, 5.0, True),
        Step(20, 100, 100, 9.0, True),
        Step(40, 200, 120, 2000.0, False),
        Step(80, 400, 400, 5.0, True),  # after a miss: a queue draining, not a rate held
    ]
    assert found_rate(steps) == 20
    assert found_rate(steps[2:]) is None


def test_the_article_says_the_rate_was_found_and_what_the_app_could_not_hold():
    manifest = {
        "calibration": {
            "allocator": "glibc",
            "step_s": 3.0,
            "p99_bound_ms": 1000.0,
            "steps": [
                {"rate": 10.0, "requests": 30, "answered": 30, "p99_ms": 52.0, "held": True},
                {"rate": 20.0, "requests": 60, "answered": 60, "p99_ms": 140.0, "held": True},
                {"rate": 40.0, "requests": 120, "answered": 61, "p99_ms": 2000.0, "held": False},
            ],
            "found_rps": 20.0,
            "fraction": 0.7,
            "rate": 14.0,
        }
    }
    text = calibration_sentence(manifest)
    assert "ramped on glibc in steps of 3 s at 10, 20 and 40 requests/s" in text
    assert "It held 20 requests/s (p99 140 ms) but not 40, where it answered 51%" in text
    assert "every repeat ran at 70% of it, 14 requests/s" in text
    assert calibration_sentence({}) == ""


@pytest.mark.real_run
@pytest.mark.slow  # 33 s; the ramp's rules and words: the tests above
def test_a_slow_app_is_calibrated_then_holds_the_rate_found(tmp_path: Path):
    spec = tmp_path / "slow.yaml"
    text = (ROOT / "examples" / "slow.yaml").read_text()
    text = text.replace("app_dir: apps", f"app_dir: {ROOT / 'examples' / 'apps'}")
    text = text.replace("requests: slow.jsonl", f"requests: {ROOT / 'examples' / 'slow.jsonl'}")
    text = text.replace(
        "  rate: 60\n", "  rate: 80\n  calibrate: {steps: 4, step_s: 3, fraction: 0.7}\n"
    )
    spec.write_text(text)
    proc = run_cli("run", str(spec), "--out", str(tmp_path / "results"), "--wait")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "calibrating on glibc" in proc.stderr
    run = Path(proc.stdout.strip().splitlines()[-1])
    cal = json.loads((run / "manifest.json").read_text())["calibration"]
    # apps/slow.py serves 20 requests a second at the most with its one worker
    assert [s["rate"] for s in cal["steps"]] == [10.0, 20.0, 40.0, 80.0]
    assert cal["found_rps"] in (10.0, 20.0) and not cal["steps"][2]["held"]
    assert cal["rate"] == round(cal["found_rps"] * 0.7, 3)
    (row,) = [
        r
        for r in read_table(run / "summary.arrow", "summary").to_pylist()
        if r["experiment"] == "service"
    ]
    assert row["saturated"] is False  # the rate found is one the app holds
    assert abs(row["achieved_rps"] - cal["rate"]) < 0.15 * cal["rate"]
