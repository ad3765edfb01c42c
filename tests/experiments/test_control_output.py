"""The control's command line and its output lines, without running it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.experiments.control import method_flags, settle_window
from bench.experiments.control_program import (
    ControlOutputError,
    ControlResult,
    control_command,
    parse_event,
    spec_arguments,
)
from bench.results.tables import SCHEMAS, to_table
from bench.spec import ControlSpec, ServiceSpec, Spec

ARGS: dict[str, Any] = {
    "threads": 4,
    "live_bytes": 64 << 20,
    "min_bytes": 4096,
    "max_bytes": 65536,
    "seconds": 20,
    "idle_s": 5.0,
    "seed": 1,
}

RESULT: dict[str, Any] = {
    "event": "result",
    "threads": 4,
    "operations": 1000,
    "seconds": 1.0002,
    "allocs_per_s": 999.8,
    "live_bytes": 67108864,
    "slots": 1928,
    "share": "shard",
    "idle_s": 5.0,
    "cpus": 2,
    "cpu_user_s": 0.5,
    "cpu_sys_s": 0.25,
    "minor_faults": 12,
    "major_faults": 0,
    "run_cpu_user_s": 0.625,
    "run_cpu_sys_s": 0.375,
    "run_minor_faults": 16400,
    "run_major_faults": 1,
    "checksum": "00ff3a",
    "fill_checksum": "12ab",
    "malloc_library": "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "pid": 4242,
}


def test_command_names_every_argument() -> None:
    cmd = control_command("/cache/churn", **ARGS)
    assert cmd == [
        "/cache/churn",
        "--threads", "4",
        "--live-bytes", str(64 << 20),
        "--min-bytes", "4096",
        "--max-bytes", "65536",
        "--seconds", "20.0",
        "--idle-s", "5.0",
        "--seed", "1",
        "--share", "shard",
    ]  # fmt: skip


def test_command_passes_the_global_share_mode() -> None:
    assert control_command("c", **ARGS, share="global")[-2:] == ["--share", "global"]


@pytest.mark.parametrize(
    "change",
    [
        {"threads": 0},
        {"threads": 2.5},
        {"threads": True},
        {"live_bytes": 0},
        {"min_bytes": 70000},  # above max_bytes
        {"seconds": 0},
        {"seconds": float("nan")},
        {"idle_s": -1},
        {"seed": -1},
        {"share": "per-thread"},
    ],
)
def test_command_refuses_bad_values_before_anything_starts(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        control_command("c", **{**ARGS, **change})


def test_command_accepts_a_zero_idle_rest() -> None:
    assert control_command("c", **{**ARGS, "idle_s": 0})[-5] == "0.0"


def test_phase_event_is_parsed() -> None:
    line = '{"event":"phase","phase":"churn","t_s":0.014,"mono_s":550.1}'
    assert parse_event(line) == {"event": "phase", "phase": "churn", "t_s": 0.014, "mono_s": 550.1}


def test_result_event_is_parsed_into_a_result() -> None:
    event = parse_event(json.dumps(RESULT))
    result = ControlResult.from_event(event, phase_t_s={"fill": 0.0, "churn": 0.1})
    assert result.allocs_per_s == 999.8 and result.operations == 1000
    assert result.malloc_library.endswith("libjemalloc.so.2")
    assert result.share == "shard" and result.fill_checksum == "12ab"
    assert result.phase_t_s == {"fill": 0.0, "churn": 0.1}


def test_result_without_optional_fields_still_parses() -> None:
    required = {k: v for k, v in RESULT.items() if k not in {"slots", "fill_checksum"}}
    result = ControlResult.from_event(parse_event(json.dumps(required)))
    assert result.slots is None and result.fill_checksum is None


def test_result_carries_the_churn_phases_cpu_time_and_faults_and_the_run_totals() -> None:
    result = ControlResult.from_event(parse_event(json.dumps(RESULT)))
    assert (result.cpu_user_s, result.cpu_sys_s) == (0.5, 0.25)
    assert (result.minor_faults, result.major_faults) == (12, 0)
    assert (result.run_cpu_user_s, result.run_cpu_sys_s) == (0.625, 0.375)
    assert (result.run_minor_faults, result.run_major_faults) == (16400, 1)
    assert (result.idle_s, result.cpus) == (5.0, 2)


def test_allocs_per_cpu_s_divides_operations_by_the_churns_cpu_seconds() -> None:
    result = ControlResult.from_event(parse_event(json.dumps(RESULT)))
    # 1000 operations over 0.5 s user + 0.25 s system: CPU time, not the 1.0002 s of wall.
    assert result.allocs_per_cpu_s == pytest.approx(1000 / 0.75)
    assert result.allocs_per_s == 999.8


def test_allocs_per_cpu_s_is_none_when_no_cpu_time_was_counted() -> None:
    event = {**RESULT, "cpu_user_s": 0, "cpu_sys_s": 0.0}
    assert ControlResult.from_event(parse_event(json.dumps(event))).allocs_per_cpu_s is None


@pytest.mark.parametrize(
    ("threads", "cpus", "flag"),
    [(4, 2, "4 threads on 2 CPUs"), (2, 1, "2 threads on 1 CPU"), (2, 2, None), (1, 8, None)],
)
def test_more_threads_than_cpus_is_oversubscribed(threads: int, cpus: int, flag: str) -> None:
    event = {**RESULT, "threads": threads, "cpus": cpus}
    result = ControlResult.from_event(parse_event(json.dumps(event)))
    assert result.oversubscribed is (flag is not None)
    assert result.oversubscription == flag


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"event":"hello"}', "unknown event"),
        ('{"phase":"fill","t_s":0}', "unknown event"),
        ('{"event":"phase","phase":"warmup","t_s":0}', "unknown phase"),
        ('{"event":"phase","phase":"fill"}', "t_s"),
        ('{"event":"phase","phase":"fill","t_s":"0"}', "t_s"),
        (json.dumps({**RESULT, "operations": None}), "operations"),
        (json.dumps({**RESULT, "threads": True}), "threads"),
        (json.dumps({k: v for k, v in RESULT.items() if k != "malloc_library"}), "malloc_lib"),
        (json.dumps({**RESULT, "checksum": "xyz"}), "checksum is not hex"),
        (json.dumps({**RESULT, "checksum": ""}), "checksum is not hex"),
        *(
            (json.dumps({k: v for k, v in RESULT.items() if k != name}), f"'{name}' missing")
            for name in (
                "cpu_user_s",
                "cpu_sys_s",
                "minor_faults",
                "major_faults",
                "run_cpu_user_s",
                "run_cpu_sys_s",
                "run_minor_faults",
                "run_major_faults",
                "share",
                "idle_s",
                "cpus",
            )
        ),
        (json.dumps({**RESULT, "cpu_user_s": "0.5"}), "'cpu_user_s' missing or not a number"),
        (json.dumps({**RESULT, "minor_faults": 12.5}), "'minor_faults' missing or not a whole"),
        (json.dumps({**RESULT, "major_faults": False}), "'major_faults' missing or not a whole"),
        (json.dumps({**RESULT, "cpus": "2"}), "'cpus' missing or not a whole number"),
        (json.dumps({**RESULT, "share": 1}), "'share' missing or not a string"),
        (json.dumps({**RESULT, "cpu_sys_s": -0.1}), "'cpu_sys_s' is not a finite number >= 0"),
        (json.dumps({**RESULT, "minor_faults": -1}), "'minor_faults' is not a finite number >= 0"),
        (json.dumps({**RESULT, "cpu_user_s": float("nan")}), "'cpu_user_s' is not a finite"),
        (json.dumps({**RESULT, "cpus": 0}), "threads and cpus must be at least 1"),
        (json.dumps({**RESULT, "share": "everyone"}), "share is not one of shard, global"),
    ],
)
def test_malformed_output_is_a_clear_error_quoting_the_line(line: str, complaint: str) -> None:
    with pytest.raises(ControlOutputError, match=complaint) as info:
        parse_event(line)
    assert line[:20] in str(info.value)


def test_from_event_refuses_a_phase_event() -> None:
    with pytest.raises(ControlOutputError, match="not a result event"):
        ControlResult.from_event({"event": "phase", "phase": "fill", "t_s": 0.0})


def test_row_fits_the_control_table() -> None:
    result = ControlResult.from_event(parse_event(json.dumps(RESULT)))
    row = result.row(
        allocator="jemalloc",
        repeat=0,
        peak_anon_bytes=90 << 20,
        settled_anon_bytes=80 << 20,
        settle_window_s=10.0,
    )
    assert set(row) == set(SCHEMAS["control"].names)
    table = to_table("control", [row])
    assert table.num_rows == 1 and table.column("checksum")[0].as_py() == "00ff3a"
    got = table.to_pylist()[0]
    assert got["share"] == "shard" and got["idle_s"] == 5.0 and got["settle_window_s"] == 10.0
    assert got["cpus"] == 2 and got["oversubscribed"] is True  # 4 threads on 2 CPUs
    assert got["allocs_per_cpu_s"] == pytest.approx(1000 / 0.75)
    assert (got["cpu_user_s"], got["cpu_sys_s"], got["minor_faults"]) == (0.5, 0.25, 12)


def test_summary_table_has_the_method_flag_columns() -> None:
    row = {"experiment": "control", "allocator": "glibc", "repeat": 0, "allocs_per_cpu_s": 2e6}
    row |= {"flagged": True, "flags": "4 threads on 2 CPUs"}
    got = to_table("summary", [row]).to_pylist()[0]
    assert (got["flagged"], got["flags"], got["allocs_per_cpu_s"]) == (True, row["flags"], 2e6)


def test_spec_arguments_match_the_service_churn() -> None:
    spec = Spec(name="x", title="X", allocators=["glibc"])
    args = spec_arguments(spec)
    assert args["live_bytes"] == spec.control_live_bytes == spec.service.live_bytes
    assert (args["min_bytes"], args["max_bytes"]) == (4096, 65536)
    assert args["threads"] == spec.control.threads and args["seconds"] == spec.control.seconds
    control_command("c", **args)  # every value is acceptable to the command line


def test_spec_arguments_rest_the_control_as_long_as_the_service() -> None:
    spec = Spec(name="x", title="X", allocators=["glibc"], service=ServiceSpec(idle_s=42))
    assert spec_arguments(spec)["idle_s"] == 42.0
    shorter = spec.model_copy(update={"control": ControlSpec(idle_s=3)})
    assert spec_arguments(shorter)["idle_s"] == 3.0


@pytest.mark.parametrize(
    ("rest_s", "measured_s", "window_s"),
    [
        (120.0, 120.0004, 10.0),  # the service's window whenever the rest allows it
        (10.0, 10.0002, 10.0),  # a rest exactly as long as the window
        (2.0, 2.0003, 2.0003),  # a shorter rest: the whole rest, as measured
        (0.0, 0.0001, 0.0001),
    ],
)
def test_the_settle_window_is_the_services_unless_the_rest_is_shorter(
    rest_s: float, measured_s: float, window_s: float
) -> None:
    assert settle_window(10.0, rest_s, measured_s) == pytest.approx(window_s)


def _result(**change: Any) -> ControlResult:
    return ControlResult.from_event(parse_event(json.dumps({**RESULT, **change})))


def test_no_flags_when_the_control_follows_the_method() -> None:
    result = _result(threads=2, cpus=2, idle_s=120.0)
    assert method_flags(result, service_idle_s=120, service_window_s=10, window_s=10) == []


def test_a_rest_shorter_than_the_services_is_flagged() -> None:
    result = _result(threads=2, cpus=2, idle_s=20.0)
    assert method_flags(result, service_idle_s=120, service_window_s=10, window_s=10) == [
        "rested 20 s, less than the service's 120 s"
    ]
    short = _result(threads=2, cpus=2, idle_s=2.0)
    assert method_flags(short, service_idle_s=120, service_window_s=10, window_s=2.0003) == [
        "rested 2 s, less than the service's 120 s (settled over 2.0003 s, not 10 s)"
    ]


def test_every_flag_of_a_repeat_is_listed() -> None:
    result = _result(threads=4, cpus=2, idle_s=5.0)
    assert method_flags(result, service_idle_s=15, service_window_s=5, window_s=5) == [
        "rested 5 s, less than the service's 15 s",
        "4 threads on 2 CPUs",
    ]
