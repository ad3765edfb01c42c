"""The live payload: rebuilt from the /churn answers, drawn in the staircase, and its fill time."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
from material import cells, material, text_of

from bench.report.live import fill_time
from bench.report.series import (
    PhaseSpan,
    close_gaps,
    first_reach,
    latest_at,
    live_payload,
    median_line,
)
from bench.results.tables import read_table, write_table


def test_live_payload_sums_each_workers_latest_answer():
    ready = {1: 100, 2: 200}
    answers = [(2.0, 1, 150), (1.0, 2, 260), (3.0, 1, 170)]  # out of order on purpose
    line = live_payload(answers, ready, ready_s=0.5, end_s=9.0)
    assert line == [(0.5, 300.0), (1.0, 360.0), (2.0, 410.0), (3.0, 430.0), (9.0, 430.0)]


def test_a_worker_missing_from_the_ready_record_counts_from_its_first_answer():
    line = live_payload([(1.0, 7, 50), (2.0, 8, 30)], {7: 10}, ready_s=0.0)
    assert line == [(0.0, 10.0), (1.0, 50.0), (2.0, 80.0)]
    assert live_payload([], {}, None) == []


def test_median_line_follows_the_middle_allocator():
    lines = {
        "a": [(0.0, 1.0), (10.0, 5.0)],
        "b": [(0.0, 2.0), (10.0, 6.0)],
        "c": [(0.0, 9.0), (10.0, 9.0)],
    }
    line = median_line(lines, steps=10)
    assert line[0] == (0.0, 2.0) and line[-1] == (10.0, 6.0)
    assert latest_at(line, 5.0) == 2.0
    assert median_line({}) == [] and median_line({"a": lines["a"]}) == lines["a"]


def test_fill_time_is_the_first_reach_of_95_percent_of_the_end_of_load_value():
    line = [(0.0, 10.0), (20.0, 50.0), (40.0, 96.0), (60.0, 100.0), (90.0, 100.0)]
    assert first_reach(line, 0.95, 100.0) == 40.0
    assert fill_time(line, (10.0, 60.0)) == 30.0  # seconds into the load
    assert fill_time(line, (50.0, 60.0)) == -10.0  # reached before load began
    assert fill_time([], (0.0, 1.0)) is None and fill_time(line, None) is None


def test_phase_spans_meet_so_no_gap_is_shaded_as_a_phase():
    spans = [PhaseSpan("start", 0, 1.5), PhaseSpan("warmup", 2, 9), PhaseSpan("load", 10, 20)]
    assert [(s.start_s, s.end_s) for s in close_gaps(spans)] == [(0, 2), (2, 10), (10, 20)]


def test_the_staircase_draws_the_live_payload_as_a_dashed_labelled_line(tmp_path: Path):
    m = material(tmp_path)
    html = m.chart("staircase")
    assert "stroke-dasharray" in html  # the dashed line
    assert re.search(r"<text[^>]*>live payload</text>", html)  # labelled on the chart
    root = re.search(r"<svg\b[^>]*>", html).group(0)  # type: ignore[union-attr]
    assert "dashed line shows the live payload" in root  # in the text alternative
    caption = text_of(re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1))  # type: ignore[union-attr]
    assert "The dashed line is the live payload" in caption
    assert "median across the 4 allocators" in caption
    rows = {r[0]: r[1:] for r in cells(html)}
    live = rows["live payload (median across allocators)"]
    assert live[0] == m.values["live.ready.mb"] and live[2] == m.values["live.load_end.mb"]


def test_the_staircase_starts_at_launch_with_start_up_shaded_and_labelled(tmp_path: Path):
    m = material(tmp_path, cgroup="v2")
    html = m.chart("staircase")
    labels = re.findall(r"<text[^>]*>([a-z-]+)</text>", html)
    for phase in ("start-up", "warm-up", "load", "idle", "reclaim"):
        assert phase in labels, phase
    assert "time since the service was launched" in html
    caption = text_of(re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1))  # type: ignore[union-attr]
    assert "Shaded, left to right: start-up, warm-up, load, idle and reclaim." in caption
    v1 = material(tmp_path / "v1", cgroup="v1").chart("staircase")
    assert ">reclaim</text>" not in v1


def test_the_live_payload_sentence_quotes_the_recorded_payload(tmp_path: Path):
    m = material(tmp_path)
    text = m.say("live_payload")
    assert f"{m.values['live.ready.mb']} when the service was ready" in text
    assert f"{m.values['live.load_end.mb']} at the end of load" in text
    fill = m.values["live.fill_measured"]
    assert f"The payload first reached 95% of its end-of-load value {fill}" in text
    assert f"estimated {m.values['live.fill_estimate']} to fill it" in text


def test_a_run_without_live_payloads_draws_memory_alone(tmp_path: Path):
    m = material(tmp_path)
    path = m.view.study.current.path / "requests.arrow"
    table = read_table(path, "requests")
    blank = pa.nulls(table.num_rows, pa.int64())
    write_table(
        path,
        "requests",
        table.set_column(table.schema.get_field_index("live_bytes"), "live_bytes", blank),
    )
    html = m.chart("staircase")
    assert html.startswith("<figure") and "stroke-dasharray" not in html
    assert "live payload" not in text_of(html)
