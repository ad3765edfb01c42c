"""The spec's memory limit: its bounds, one line per mistake, a hash that older runs keep,
and the shipped spec that sets one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.spec import SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "name: t\ntitle: T\nallocators: [glibc]\n"


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "specs/x.yaml")
    return str(info.value).splitlines()


def test_no_limit_by_default():
    assert parse_spec(MINIMAL).service.memory_limit_mb is None


def test_a_limit_is_megabytes_of_a_million_bytes():
    spec = parse_spec(MINIMAL + "service:\n  memory_limit_mb: 375\n")
    assert spec.service.memory_limit_mb == 375.0


@pytest.mark.parametrize("value", ["0", "-375"])
def test_a_limit_of_zero_or_less_is_an_error_with_its_line(value: str):
    assert _errors(MINIMAL + f"service:\n  rate: 100\n  memory_limit_mb: {value}\n") == [
        "specs/x.yaml:6: service.memory_limit_mb: must be greater than 0"
    ]


@pytest.mark.parametrize("value", [".inf", ".nan", "lots"])
def test_a_limit_that_is_no_finite_number_is_an_error_with_its_line(value: str):
    (line,) = _errors(MINIMAL + f"service:\n  memory_limit_mb: {value}\n")
    assert line.startswith("specs/x.yaml:5: service.memory_limit_mb: ")


def test_a_limit_without_a_cgroup_to_hold_it_is_an_error_naming_the_conflict():
    (line,) = _errors(MINIMAL + "service:\n  memory_limit_mb: 375\nmachine:\n  cgroup: none\n")
    assert line.startswith("specs/x.yaml:6: machine: cgroup: none cannot hold")


def test_a_spec_without_a_limit_keeps_the_hash_its_runs_were_made_with():
    spec = parse_spec(MINIMAL)
    assert "memory_limit_mb" not in spec.canonical_json()
    assert spec.spec_hash == parse_spec(MINIMAL + "service:\n  memory_limit_mb: null\n").spec_hash
    limited = parse_spec(MINIMAL + "service:\n  memory_limit_mb: 375\n")
    assert json.loads(limited.canonical_json())["service"]["memory_limit_mb"] == 375
    assert limited.spec_hash != spec.spec_hash


def test_the_shipped_limit_spec_runs_the_quick_workload_under_a_limit_between_its_extremes():
    limited = load_spec(ROOT / "specs" / "memory-limit.yaml")
    quick = load_spec(ROOT / "specs" / "quick.yaml")
    assert limited.repeats == 1
    assert limited.allocators == quick.allocators
    # the quick study peaked between 587 MB (glibc) and 653 MB (tcmalloc) here
    assert 587 < (limited.service.memory_limit_mb or 0) < 653
    same = limited.service.model_dump(exclude={"memory_limit_mb"})
    assert same == quick.service.model_dump(exclude={"memory_limit_mb"})
