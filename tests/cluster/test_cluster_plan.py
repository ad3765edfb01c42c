"""The pure parts of a cluster run: host requirements and resources, host kinds, the plan of
cells, and the payload a cell sends back (bench.cluster without a cluster)."""

from __future__ import annotations

import pytest
from studyrun import TINY_SPEC

from bench.cluster.executor import HOST_KEYS, host_kinds, plan_cells
from bench.cluster.hosts import kind_label, parse_requirement, resources_for
from bench.cluster.wire import WireError, decode, encode
from bench.errors import UsageError
from bench.experiments.cell import Cell, CellResult, empty_rows
from bench.measure.machine import host_info
from bench.run.rounds import rotated
from bench.spec import parse_spec

SPEC = parse_spec(TINY_SPEC)  # glibc, jemalloc; 1 service repeat, 2 control repeats


def test_a_requirement_is_key_equals_value_and_becomes_a_resource_name():
    assert parse_requirement("arch=aarch64") == ("arch", "aarch64")
    assert resources_for({"arch": "aarch64"}) == {"bench_host": 1.0, "arch:aarch64": 1.0}
    assert resources_for({}) == {"bench_host": 1.0}  # every cell takes one whole host


@pytest.mark.parametrize("bad", ["arch", "=aarch64", "arch=", "arch=arm 64", "a:b=c", "a=b=c"])
def test_a_requirement_dask_could_not_name_is_a_usage_error(bad: str):
    with pytest.raises(UsageError, match="KEY=VALUE"):
        parse_requirement(bad)


def test_host_kinds_are_the_specs_each_with_every_require_added():
    assert host_kinds(SPEC, []) == [{}]
    assert host_kinds(SPEC, ["arch=aarch64"]) == [{"arch": "aarch64"}]
    two = parse_spec(TINY_SPEC + "hosts: [{arch: x86_64}, {arch: aarch64}]\n")
    assert host_kinds(two, ["zone=a"]) == [
        {"arch": "x86_64", "zone": "a"},
        {"arch": "aarch64", "zone": "a"},
    ]


def test_a_spec_without_hosts_keeps_its_hash():
    assert "hosts" not in SPEC.canonical_json()


def test_the_plan_is_the_local_runs_rounds_in_order_once_per_host_kind():
    cells, order = plan_cells(
        SPEC, ["glibc", "jemalloc"], kinds=2, skip_service=False, skip_control=False
    )
    assert order == [
        {"round": r, "allocators": rotated(["glibc", "jemalloc"], r)} for r in range(2)
    ]
    assert [c.key for c in cells] == [
        "glibc/service/r0", "glibc/control/r0", "jemalloc/service/r0", "jemalloc/control/r0",
        "glibc/service/r0/k1", "glibc/control/r0/k1", "jemalloc/service/r0/k1",
        "jemalloc/control/r0/k1",
        "jemalloc/control/r1", "glibc/control/r1",
        "jemalloc/control/r1/k1", "glibc/control/r1/k1",
    ]  # fmt: skip
    only_service, _ = plan_cells(SPEC, ["glibc"], kinds=1, skip_service=False, skip_control=True)
    assert [c.key for c in only_service] == ["glibc/service/r0"]


def test_hosts_of_one_kind_share_a_label_and_another_cpu_is_another_kind():
    fp = {"cpu_model": "EPYC", "machine": "x86_64", "cores": 2, "memory_bytes": 24 * 2**30,
          "kernel": "6.1", "glibc": "2.36", "page_size": 4096, "cgroup_mode": "v1"}  # fmt: skip
    same = {**fp, "memory_bytes": 24 * 2**30 - 5 * 2**20, "hostname": "other"}
    assert kind_label(fp) == kind_label(same)
    assert kind_label(fp) != kind_label({**fp, "cpu_model": "Graviton", "machine": "aarch64"})
    assert kind_label(fp) != kind_label({**fp, "page_size": 65536})


def test_the_headline_host_of_a_cluster_run_has_a_local_runs_keys():
    assert tuple(host_info()) == HOST_KEYS


def _result() -> CellResult:
    rows = empty_rows()
    rows["summary"] = [{"experiment": "service", "allocator": "glibc", "repeat": 0,
                        "peak_anon_bytes": 5, "host": "h1"}]  # fmt: skip
    rows["memory"] = [{"experiment": "service", "allocator": "glibc", "repeat": 0, "t_s": 0.5,
                       "phase": "load", "anon_bytes": 7, "late_s": 0.0, "host": "h1"}]  # fmt: skip
    return CellResult(
        cell=Cell("glibc", "service", 0), status="ok", host="h1", started=1.0, finished=2.5,
        rows=rows, entry={"wall_s": 1.5, "phases": [{"phase": "load"}]},
    )  # fmt: skip


def test_a_payload_gives_back_the_rows_and_entry_it_was_made_from():
    payload = encode(_result(), fingerprint={"cores": 2}, confounds={"thp": {}})
    assert set(payload["tables"]) == {
        "memory",
        "requests",
        "control",
        "summary",
        "restarts",
        "retention",
        "stages",
    }
    got = decode(payload)
    assert got.result.cell == Cell("glibc", "service", 0) and got.result.host == "h1"
    assert got.result.entry == {"wall_s": 1.5, "phases": [{"phase": "load"}]}
    assert got.result.rows["memory"][0]["anon_bytes"] == 7
    assert got.result.rows["summary"][0]["peak_anon_bytes"] == 5
    assert got.result.rows["summary"][0]["p99_ms"] is None  # every column, null where unset
    assert got.fingerprint == {"cores": 2} and got.confounds == {"thp": {}}


def test_a_payload_of_another_format_is_refused_by_name():
    payload = encode(_result(), fingerprint={}, confounds={})
    with pytest.raises(WireError, match="format '0'"):
        decode({**payload, "format": "0"})
    with pytest.raises(WireError, match="not readable Arrow IPC"):
        decode({**payload, "tables": {**payload["tables"], "memory": b"damaged"}})
