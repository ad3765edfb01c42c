"""Worker recycling in a spec: the service keys, and a variant that recycles for itself."""

from __future__ import annotations

import pytest

from bench.spec import SpecError, parse_spec

MINIMAL = "name: t\ntitle: T\nallocators: [glibc]\n"

RECYCLED = """\
name: t
title: T
allocators:
  - glibc
  - name: glibc-recycled
    base: glibc
    service: {max_requests: 2000, max_requests_jitter: 200}
aa_pair: glibc-recycled
service:
  workers: 2
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "specs/x.yaml")
    return str(info.value).splitlines()


def test_recycling_is_off_by_default():
    spec = parse_spec(MINIMAL)
    assert spec.service.max_requests is None
    assert spec.service.max_requests_jitter == 0


def test_the_service_section_may_recycle_every_allocator():
    spec = parse_spec(MINIMAL + "service:\n  max_requests: 500\n  max_requests_jitter: 50\n")
    assert (spec.service.max_requests, spec.service.max_requests_jitter) == (500, 50)
    assert spec.service_for("glibc") is spec.service


def test_a_variant_recycles_for_itself_and_keeps_the_rest_of_the_service():
    spec = parse_spec(RECYCLED)
    assert spec.service_for("glibc").max_requests is None
    recycled = spec.service_for("glibc-recycled")
    assert (recycled.max_requests, recycled.max_requests_jitter) == (2000, 200)
    assert recycled.workers == 2  # everything else is the spec's
    # the A/A duplicate of a recycled variant recycles as its pair does
    assert spec.service_for("glibc-recycled-again") == recycled


def test_a_variant_overrides_only_the_keys_it_names():
    spec = parse_spec(
        RECYCLED.replace("{max_requests: 2000, max_requests_jitter: 200}", "{max_requests: 300}")
        + "  max_requests_jitter: 30\n"
    )
    assert spec.service_for("glibc-recycled").max_requests_jitter == 30
    # null switches the spec's recycling off for that allocator
    spec = parse_spec(
        RECYCLED.replace("{max_requests: 2000, max_requests_jitter: 200}", "{max_requests: null}")
        + "  max_requests: 400\n"
    )
    assert spec.service_for("glibc").max_requests == 400
    assert spec.service_for("glibc-recycled").max_requests is None


def test_an_override_of_another_service_key_is_an_error_with_its_line():
    text = RECYCLED.replace(
        "    service: {max_requests: 2000, max_requests_jitter: 200}\n",
        "    service:\n      max_requests: 2000\n      workers: 8\n",
    )
    assert _errors(text) == [
        "specs/x.yaml:9: allocators[1].service.workers: unknown key: an allocator may set only "
        "max_requests and max_requests_jitter for itself (the rest of service is the same for "
        "every allocator)"
    ]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "{max_requests: 0}",
            "allocators[1].service.max_requests: must be greater than or equal to 1",
        ),
        (
            "{max_requests_jitter: -5}",
            "allocators[1].service.max_requests_jitter: must be greater than or equal to 0",
        ),
        ("{max_requests: lots}", "allocators[1].service.max_requests: must be a valid integer"),
    ],
)
def test_impossible_override_values_are_errors_with_their_line(override: str, expected: str):
    text = RECYCLED.replace("{max_requests: 2000, max_requests_jitter: 200}", override)
    (line,) = _errors(text)
    assert line.startswith("specs/x.yaml:7: ") and expected in line


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("max_requests: 0", "service.max_requests: must be greater than or equal to 1"),
        ("max_requests_jitter: -1", "service.max_requests_jitter: must be greater than or equal"),
    ],
)
def test_impossible_service_recycling_values_are_errors(body: str, expected: str):
    (line,) = _errors(MINIMAL + f"service:\n  {body}\n")
    assert line.startswith("specs/x.yaml:5: ") and expected in line


def test_overrides_are_recorded_as_given_in_the_resolved_spec():
    dumped = parse_spec(RECYCLED).model_dump(mode="json")["allocators"]
    assert dumped[1]["service"] == {"max_requests": 2000, "max_requests_jitter": 200}
    given = RECYCLED.replace(", max_requests_jitter: 200", "")
    assert parse_spec(given).model_dump(mode="json")["allocators"][1]["service"] == {
        "max_requests": 2000
    }
