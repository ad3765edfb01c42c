"""A service that cannot keep up with its load is named as such: the rule, the article's
words, and a real run of an app made slow on purpose (examples/slow.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest
from studyrun import ROOT, run_cli

from bench.errors import EXIT_SATURATED
from bench.measure.runstats import saturation
from bench.results.tables import read_table


def test_a_repeat_is_saturated_below_nine_tenths_of_the_rate_or_over_a_twentieth_failed():
    assert saturation(199.0, 200.0, 0, 2400) is None
    assert saturation(185.0, 200.0, 100, 2400) is None  # 92.5% of the rate, 4% failed
    assert saturation(170.0, 200.0, 0, 2400) == (
        "saturated: the app served 170 of 200 requests a second "
        "(0 of 2400 load requests went unanswered)"
    )
    assert saturation(195.0, 200.0, 200, 2400) is not None  # 8% failed
    assert saturation(0.0, 200.0, 0, 0) is None  # no load at all says nothing


@pytest.mark.real_run
@pytest.mark.slow  # 20 s; the rule: the test above; its words: test_settling_section
def test_a_slow_app_run_is_named_saturated_in_the_terminal_and_exits_5(tmp_path: Path):
    proc = run_cli(
        "run", str(ROOT / "examples" / "slow.yaml"), "--out", str(tmp_path / "results"), "--wait"
    )
    assert proc.returncode == EXIT_SATURATED, proc.stderr[-3000:]
    assert "the service could not keep up with the asked rate under glibc" in proc.stderr
    run = Path(proc.stdout.strip().splitlines()[-1])
    (row,) = [
        r
        for r in read_table(run / "summary.arrow", "summary").to_pylist()
        if r["experiment"] == "service"
    ]
    assert row["saturated"] is True and row["achieved_rps"] < 0.9 * 60
    assert row["flags"].startswith("saturated: the app served")
