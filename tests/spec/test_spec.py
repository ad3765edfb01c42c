"""The spec: defaults, shipped specs, and one clear line per mistake (file:line, field)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.allocators.registry import resolve_for_spec, resolve_spec
from bench.spec import BUILTIN_ALLOCATORS, SpecError, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "specs/x.yaml")
    return str(info.value).splitlines()


MINIMAL = "name: t\ntitle: T\nallocators: [glibc]\n"


def test_minimal_spec_takes_the_original_studys_defaults():
    spec = parse_spec(MINIMAL)
    assert spec.service.workers == 4
    assert spec.service.rate == 200
    assert spec.service.load_s == 600 and spec.service.idle_s == 120
    assert spec.service.churn.live_buffers == 5000
    assert spec.control.threads == 4 and spec.control.repeats == 3
    assert spec.control_live_bytes == 4 * 5000 * (4096 + 65536) // 2


def test_control_rests_as_long_as_the_service_by_default():
    spec = parse_spec(MINIMAL)
    assert spec.control.idle_s == "match-service"
    assert spec.control_idle_s == spec.service.idle_s == 120
    spec = parse_spec(MINIMAL + "service:\n  idle_s: 30\n  settle_window_s: 5\n")
    assert spec.control_idle_s == 30.0


@pytest.mark.parametrize(("value", "rest"), [("match-service", 45.0), ("7", 7.0), ("0", 0.0)])
def test_control_idle_s_is_match_service_or_seconds(value: str, rest: float):
    spec = parse_spec(MINIMAL + f"service:\n  idle_s: 45\ncontrol:\n  idle_s: {value}\n")
    assert spec.control_idle_s == rest and isinstance(spec.control_idle_s, float)


@pytest.mark.parametrize("value", ["-1", "true", "'5'", "forever", ".nan", ".inf"])
def test_control_idle_s_refuses_anything_else_with_one_line(value: str):
    assert _errors(MINIMAL + f"control:\n  idle_s: {value}\n") == [
        "specs/x.yaml:5: control.idle_s: must be 'match-service' or a number of seconds, 0 or more"
    ]


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_rest_the_control_as_long_as_the_service(path: Path):
    spec = load_spec(path)
    assert spec.control.idle_s == "match-service"
    assert spec.control_idle_s == spec.service.idle_floor_s  # the least idle when it ends settled


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_are_valid(path: Path):
    spec = load_spec(path)
    assert spec.name == path.stem


def test_default_spec_is_the_original_study():
    spec = load_spec(ROOT / "specs" / "default.yaml")
    assert spec.allocator_names == list(BUILTIN_ALLOCATORS)
    s = spec.service
    assert (s.workers, s.rate, s.load_s, s.idle_s, s.sample_interval_s) == (4, 200, 600, 120, 1.0)
    assert (spec.control.threads, spec.control.repeats) == (4, 3)


def test_mistyped_key_is_an_error_with_its_line():
    assert _errors(MINIMAL + "service:\n  rate: 100\n  wrokers: 4\n") == [
        "specs/x.yaml:6: service.wrokers: unknown key"
    ]


def test_negative_rate_is_an_error_with_its_line():
    assert _errors(MINIMAL + "service:\n  rate: -5\n") == [
        "specs/x.yaml:5: service.rate: must be greater than 0"
    ]


def test_unknown_allocator_is_an_error_naming_the_entry():
    (line,) = _errors("name: t\ntitle: T\nallocators:\n  - glibc\n  - jemallocc\n")
    assert line.startswith("specs/x.yaml:5: allocators[1]: unknown allocator 'jemallocc'")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("service:\n  workers: 0\n", "service.workers: must be greater than 0"),
        ("service:\n  load_s: -1\n", "service.load_s: must be greater than 0"),
        ("service:\n  idle_s: -1\n", "service.idle_s: must be greater than or equal to 0"),
        (
            "service:\n  churn: {min_bytes: 9000, max_bytes: 10}\n",
            "service.churn: min_bytes: 9000 must not exceed max_bytes (10)",
        ),
        ("service:\n  mix: {churn: 0, json: 0}\n", "service.mix: at least one endpoint"),
        ("service:\n  mix: {soap: 1}\n", "service.mix.soap: unknown key"),
        ("control:\n  live_bytes: lots\n", "control.live_bytes: must be 'match-service'"),
        ("repeats: 0\n", "repeats: must be greater than 0"),
    ],
)
def test_impossible_values_are_errors(body: str, expected: str):
    (line,) = _errors(MINIMAL + body)
    assert expected in line
    assert line.startswith("specs/x.yaml:")


def test_every_problem_is_reported_at_once():
    lines = _errors(MINIMAL + "service:\n  workers: 0\n  rate: 0\n")
    assert [ln.split(":")[1] for ln in lines] == ["5", "6"]


def test_duplicate_allocator_names_are_an_error():
    (line,) = _errors("name: t\ntitle: T\nallocators: [glibc, glibc]\n")
    assert "listed twice" in line


def test_inline_entries_variant_library_and_source(tmp_path: Path):
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(
        "name: t\ntitle: T\nallocators:\n"
        "  - {name: je-bg, base: jemalloc, env: {MALLOC_CONF: 'background_thread:true'}}\n"
        "  - {name: mine, library: lib/libmine.so}\n"
        "  - {name: built, source: {path: src, cmake_args: [-DX=1]}}\n"
    )
    spec = load_spec(spec_file)
    variant, library, source = spec.allocators
    assert variant.base == "jemalloc" and variant.env == {"MALLOC_CONF": "background_thread:true"}
    assert library.library == tmp_path / "lib" / "libmine.so"  # relative to the spec file
    assert source.source.path == tmp_path / "src"


def test_variant_of_unknown_base_and_git_without_commit_are_errors():
    lines = _errors(
        "name: t\ntitle: T\nallocators:\n"
        "  - {name: a, base: hoard}\n"
        "  - {name: b, source: {git: 'https://example.invalid/x.git'}}\n"
    )
    assert any("allocators[0].base: unknown allocator 'hoard'" in ln for ln in lines)
    assert any("allocators[1].source: a git source needs a pinned commit" in ln for ln in lines)


def test_yaml_syntax_error_names_the_line():
    (line,) = _errors("name: t\ntitle: [unclosed\n")
    assert line.startswith("specs/x.yaml:") and "not valid YAML" in line


def test_spec_hash_changes_with_content_not_formatting():
    a = parse_spec(MINIMAL)
    b = parse_spec("name: t\ntitle: T\nallocators:\n  - glibc\n# a comment\n")
    c = parse_spec(MINIMAL + "service: {rate: 100}\n")
    assert a.spec_hash == b.spec_hash != c.spec_hash


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def test_check_command_prints_one_line_and_exits_2_without_traceback(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL + "service:\n  rate: -1\n")
    out = _cli("check", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip() == f"{bad}:5: service.rate: must be greater than 0"
    assert "Traceback" not in out.stderr


def test_check_command_accepts_the_shipped_specs():
    out = _cli("check", "specs/default.yaml", "specs/quick.yaml")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": ok (") == 2
    # the arithmetic of the live-set model: when the bound is reached, in seconds of load
    assert "live set full after ~463 s of its 600 s load" in out.stdout


def test_missing_spec_file_is_one_line():
    out = _cli("check", "specs/nope.yaml")
    assert out.returncode == 2 and out.stderr.strip() == "specs/nope.yaml: no such file"


def test_schema_command_prints_the_json_schema():
    out = _cli("schema")
    schema = json.loads(out.stdout)
    assert {"name", "allocators", "service", "control"} <= set(schema["properties"])


def test_aa_pair_adds_the_allocator_again_last_under_its_own_name():
    spec = parse_spec(
        MINIMAL.replace("allocators: [glibc]", "allocators: [glibc, jemalloc]")
        + "aa_pair: jemalloc\n"
    )
    assert spec.aa_again == "jemalloc-again"
    assert spec.allocator_names == ["glibc", "jemalloc", "jemalloc-again"]
    first, again = (a for a in resolve_spec(spec, build=False) if "jemalloc" in a.name)
    assert again.name == "jemalloc-again" and again.same_as == "jemalloc"
    assert (again.library, again.env, again.kind) == (first.library, first.env, first.kind)
    assert resolve_for_spec(spec, "jemalloc-again", build=False) == again


def test_aa_pair_of_an_allocator_the_spec_lacks_is_an_error_with_its_line():
    text = MINIMAL + "aa_pair: tcmalloc\n"
    with pytest.raises(SpecError) as err:
        parse_spec(text, "specs/x.yaml")
    line = text.splitlines().index("aa_pair: tcmalloc") + 1
    assert f"specs/x.yaml:{line}: aa_pair: 'tcmalloc' is not one of the allocators" in str(
        err.value
    )


def test_aa_pair_may_not_shadow_an_allocator_of_that_name():
    text = (
        MINIMAL.replace(
            "allocators: [glibc]", "allocators:\n  - glibc\n  - {name: glibc-again, base: glibc}"
        )
        + "aa_pair: glibc\n"
    )
    with pytest.raises(SpecError, match="already named 'glibc-again'"):
        parse_spec(text)


STAGED = MINIMAL + (
    "service:\n"
    "  warmup_s: 10\n"
    "  stages:\n"
    "    - {name: steady, rate: 150, duration_s: 90}\n"
    "    - {name: burst, rate: 400, duration_s: 60, ramp_s: 5}\n"
    "    - {rate: 40, duration_s: 120, ramp_s: 10}\n"
)


def test_a_load_in_stages_gives_rate_and_load_s_and_keeps_older_specs_hashes():
    spec = parse_spec(STAGED)
    s = spec.service
    # 90 x 150 + (5 x (150 + 400) / 2 + 55 x 400) + (10 x (400 + 40) / 2 + 110 x 40)
    assert s.load_s == 270
    assert s.rate == pytest.approx((13_500 + 1_375 + 22_000 + 2_200 + 4_400) / 270)
    assert s.stage_names == ["steady", "burst", "stage3"] and s.peak_rate == 400
    assert s.warmup_rate_used == 15  # a tenth of the first stage's rate
    assert [st.ramp_from for st in s.load_plan()] == [15, 150, 400]
    # the spec as recorded (rate and load_s written out) loads back to the same spec
    again = parse_spec(json.dumps(spec.model_dump(mode="json")))
    assert again.spec_hash == spec.spec_hash
    # a spec without stages hashes as it did before stages existed
    assert "stages" not in json.loads(parse_spec(MINIMAL).canonical_json())["service"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  rate: 100\n",
            "specs/x.yaml:4: service: rate (100) disagrees with the stages, whose mean rate is",
        ),
        (
            "    - {rate: 5000, duration_s: 10}\n",
            "specs/x.yaml:10: service.stages[3].rate: 5000 requests/s is above the 4000 the "
            "load generator holds",
        ),
        (
            "    - {rate: 50, duration_s: 10, ramp_s: 20}\n",
            "specs/x.yaml:10: service.stages[3]: ramp_s (20) must not exceed duration_s (10)",
        ),
        ("  calibrate: {}\n", "specs/x.yaml:4: service: calibrate finds one rate"),
    ],
)
def test_a_bad_stage_is_one_line_naming_its_place(extra: str, expected: str):
    (line,) = _errors(STAGED + extra)
    assert line.startswith(expected), line


def test_an_idle_probe_is_checked_recorded_and_hashed_only_when_given():
    spec = parse_spec(MINIMAL + "service:\n  idle_probe: {blocks: 256}\n")
    probe = spec.service.idle_probe
    assert probe is not None and (probe.blocks, probe.block_bytes) == (256, 65536)
    assert json.loads(spec.canonical_json())["service"]["idle_probe"]["blocks"] == 256
    # a spec without one hashes as it did before probes could make calls
    assert "idle_probe" not in json.loads(parse_spec(MINIMAL).canonical_json())["service"]
    errors = _errors(MINIMAL + "service:\n  idle_rate: 0\n  idle_probe: {blocks: 256}\n")
    assert errors == [
        "specs/x.yaml:4: service: idle_probe needs idle probes: idle_rate and idle_s above 0"
    ]
    assert _errors(MINIMAL + "service:\n  idle_probe: {blocks: 0}\n") == [
        "specs/x.yaml:5: service.idle_probe.blocks: must be greater than 0"
    ]
