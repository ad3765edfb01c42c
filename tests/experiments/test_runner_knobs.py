"""A variant's settings, proven in a real run: read back in the probe and in every worker.

One tiny real run of three jemalloc and glibc variants: one whose settings take, one with a
misspelt MALLOC_CONF key (jemalloc ignores it with a warning), and one whose PYTHONMALLOC
the spec's own `python_malloc: malloc` overrides in the workers, which only the workers'
read-back can see. The first runs; each of the others fails alone, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from studyrun import TINY_SPEC, run_cli

from bench.allocators.knobs import CONTROL_NOTE
from bench.errors import EXIT_FAILED
from bench.results.manifest import read_manifest
from bench.results.rundir import read_rows
from bench.spec import parse_spec

#: 16 s (one real run of variants); the settings read back in the probe and a worker:
#: tests/allocators/test_knobs.py
pytestmark = [pytest.mark.slow, pytest.mark.real_run]


ALLOCATORS = """allocators:
  - name: jemalloc-decay0
    base: jemalloc
    env: {MALLOC_CONF: "dirty_decay_ms:0,muzzy_decay_ms:0"}
  - name: jemalloc-typo
    base: jemalloc
    env: {MALLOC_CONF: "dirty_decay:0"}
  - name: glibc-pymalloc
    base: glibc
    env: {PYTHONMALLOC: pymalloc}
"""
SPEC_TEXT = (
    TINY_SPEC.replace("allocators: [glibc, jemalloc]\n", ALLOCATORS)
    .replace("  workers: 2\n", "  workers: 2\n  python_malloc: malloc\n")
    .replace("  repeats: 2\n", "  repeats: 1\n")
)
SPEC = parse_spec(SPEC_TEXT)


@pytest.fixture(scope="module")
def knob_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    spec = tmp_path_factory.mktemp("spec") / "knobs.yaml"
    spec.write_text(SPEC_TEXT)
    out = tmp_path_factory.mktemp("results")
    proc = run_cli("run", str(spec), "--out", str(out), "--wait")
    return proc.returncode, Path(proc.stdout.strip().splitlines()[-1]), proc.stderr


def _allocator(run_dir: Path, name: str) -> dict:
    return next(a for a in read_manifest(run_dir)["allocators"] if a["name"] == name)


def test_settings_that_took_are_verified_in_the_probe_and_every_worker(knob_run):
    code, run_dir, stderr = knob_run
    assert code == EXIT_FAILED, stderr[-2000:]
    a = _allocator(run_dir, "jemalloc-decay0")
    assert a["status"] == "ok", a["reason"]
    assert a["base"] == "jemalloc"  # a variant, labelled with what it varies
    processes = 1 + SPEC.service.workers  # the probe, then each worker
    assert [(k["setting"], k["asked"], k["read_back"], k["state"]) for k in a["knobs"]] == [
        ("opt.dirty_decay_ms", "0", "0", "verified"),
        ("opt.muzzy_decay_ms", "0", "0", "verified"),
    ]
    for k in a["knobs"]:
        assert k["processes"] == processes
        assert k["how"] == f"jemalloc mallctl {k['setting']}"
        assert k["control"] == CONTROL_NOTE
    workers = [e for e in a["evidence"]["service"] if e["role"] == "worker"]
    assert len(workers) == SPEC.service.workers
    assert all(k["state"] == "verified" for e in workers for k in e["knobs"])


def test_a_misspelt_setting_fails_its_variant_alone_before_it_is_measured(knob_run):
    _, run_dir, stderr = knob_run
    a = _allocator(run_dir, "jemalloc-typo")
    assert a["status"] == "failed"
    assert a["reason"] == (
        "verification: MALLOC_CONF asked dirty_decay:0 but jemalloc has no setting "
        "opt.dirty_decay (misspelt or ignored)"
    )
    assert [(k["state"], k["processes"]) for k in a["knobs"]] == [("mismatch", 1)]
    assert "jemalloc-typo: failed: verification: MALLOC_CONF asked dirty_decay:0" in stderr
    rows = read_rows(run_dir)
    assert not [r for r in rows["summary"] if r["allocator"] == "jemalloc-typo"]
    assert [r for r in rows["summary"] if r["allocator"] == "jemalloc-decay0"]


def test_a_setting_the_workers_do_not_run_with_fails_on_their_read_back(knob_run):
    _, run_dir, _ = knob_run
    a = _allocator(run_dir, "glibc-pymalloc")
    assert a["status"] == "failed"
    assert "(worker): PYTHONMALLOC asked pymalloc but the library reports malloc" in a["reason"]
    # the probe, started without the service's python_malloc, saw it take; the workers not
    [k] = a["knobs"]
    assert (k["state"], k["read_back"], k["processes"]) == ("mismatch", "pymalloc | malloc", 3)
