"""The control's command line and its output lines, without running it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.control import (
    ControlOutputError,
    ControlResult,
    control_command,
    parse_event,
    spec_arguments,
)
from bench.spec import Spec
from bench.tables import SCHEMAS, to_table

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
    "cpu_user_s": 0.5,
    "cpu_sys_s": 0.25,
    "minor_faults": 12,
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
    required = {k: v for k, v in RESULT.items() if k not in {"slots", "share", "cpu_user_s"}}
    result = ControlResult.from_event(parse_event(json.dumps(required)))
    assert result.slots is None and result.share is None and result.cpu_user_s is None


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
        allocator="jemalloc", repeat=0, peak_anon_bytes=90 << 20, settled_anon_bytes=80 << 20
    )
    assert set(row) == set(SCHEMAS["control"].names)
    table = to_table("control", [row])
    assert table.num_rows == 1 and table.column("checksum")[0].as_py() == "00ff3a"


def test_spec_arguments_match_the_service_churn() -> None:
    spec = Spec(name="x", title="X", allocators=["glibc"])
    args = spec_arguments(spec)
    assert args["live_bytes"] == spec.control_live_bytes == spec.service.live_bytes
    assert (args["min_bytes"], args["max_bytes"]) == (4096, 65536)
    assert args["threads"] == spec.control.threads and args["seconds"] == spec.control.seconds
    control_command("c", **args)  # every value is acceptable to the command line
