"""Sentences and tables about the method follow what the run recorded, not what it usually does."""

from __future__ import annotations

import json
from pathlib import Path

from material import cells, material
from synthetic_run import REPO

from bench.report.specview import short_lifetime_text
from bench.report.units import fmt_duration

TEMPLATE = (REPO / "docs" / "_article.md").read_text(encoding="utf-8")


def test_reclaim_sentence_follows_the_recorded_method(tmp_path: Path):
    v1 = material(tmp_path / "v1", cgroup="v1").say("reclaim")
    assert v1.startswith("No forced reclaim ran: none was possible on this machine")
    assert "(cgroup v1 has no reclaim that works while tasks run)" in v1
    assert "returned" not in v1
    v2 = material(tmp_path / "v2", cgroup="v2").say("reclaim")
    assert v2.startswith(
        "The forced reclaim at the end (cgroup v2 memory.reclaim) returned at most"
    )
    assert "(glibc)" in v2  # glibc's settled minus after-reclaim is the largest


def test_no_page_claims_a_reclaim_where_none_could_run(tmp_path: Path):
    page = material(tmp_path, cgroup="v1").page(TEMPLATE)
    assert "returned nothing" not in page and "then a forced reclaim" not in page
    assert "no forced reclaim (none was possible here)" in page
    v2 = material(tmp_path / "v2", cgroup="v2").page(TEMPLATE)
    assert "then a forced reclaim" in v2 and "ran after idle (cgroup v2 memory.reclaim)" in v2


def _edit_manifest(m, edit) -> None:
    """Change the manifest before the material first reads the run (it reads lazily)."""
    path = m.view.study.current.path / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_a_reclaim_possible_but_not_recorded_is_said_so(tmp_path: Path):
    m = material(tmp_path, cgroup="v1")

    def possible(manifest) -> None:
        manifest["method"]["reclaim"] = {"possible": True, "how": "cgroup v2 memory.reclaim"}

    _edit_manifest(m, possible)
    assert m.say("reclaim") == (
        "A forced reclaim was possible (cgroup v2 memory.reclaim), but the run recorded no "
        "memory after one."
    )


def test_idle_sentence_says_what_the_idle_phase_contained(tmp_path: Path):
    probes = material(tmp_path / "probes", idle_rate=1.0, idle_s=30).say("idle")
    assert probes.startswith(
        "During the 30 s idle phase the service received GET /health at 1 request/s (about "
        "30 requests per allocator and repeat), and the runner asked every worker for its live "
        "set and heap once as idle began:"
    )
    silent = material(tmp_path / "silent", idle_rate=0.0)
    assert silent.say("idle").startswith(
        "During the 30 s idle phase no traffic was sent (a silent idle); the runner asked every "
        "worker for its live set and heap once as idle began, and nothing called the service "
        "after that"
    )
    assert "GET /health" not in silent.say("idle")

    def no_runner_calls(manifest) -> None:
        for entry in manifest["allocators"]:
            for rec in entry["sampler"]:
                rec["stats_calls"] = [c for c in rec["stats_calls"] if c["at"] != "load_end"]

    quiet = material(tmp_path / "quiet", idle_rate=0.0)
    _edit_manifest(quiet, no_runner_calls)
    assert quiet.say("idle").startswith(
        "During the 30 s idle phase no traffic was sent (a silent idle): the workers' expired "
        "buffers stayed unfreed until a request would come, and an allocator that returns "
        "memory only when it is next called had no call"
    )


def test_idle_sentence_says_whether_the_probes_reached_the_allocator(tmp_path: Path):
    bare = material(tmp_path / "bare", idle_rate=1.0, idle_s=30).say("idle")
    assert "may never get past the allocators' per-thread caches" in bare
    assert "what such an allocator gave back here is partly chance" in bare
    probed = material(tmp_path / "probed", idle_rate=1.0, idle_s=30)

    def with_probe(manifest) -> None:
        manifest["method"]["idle_probe"] = {"blocks": 256, "block_bytes": 65536}
        manifest["method"]["idle_traffic"] += ", each making 256 malloc/free pairs of 64 KiB each"

    _edit_manifest(probed, with_probe)
    said = probed.say("idle")
    assert said.startswith(
        "During the 30 s idle phase the service received GET /health at 1 request/s, each "
        "making 256 malloc/free pairs of 64 KiB each (about 30 requests"
    )
    assert "reach the allocator itself, so a purge that waits for allocator activity" in said
    assert "chance" not in said


def test_method_table_shows_the_recorded_method(tmp_path: Path):
    rows = {r[0]: r[1:] for r in cells(material(tmp_path, cgroup="v1").table("spec"))}
    assert rows["Idle traffic"][0] == "GET /health at 1 request/s"
    assert rows["Forced reclaim"][0] == (
        "not possible: cgroup v1 has no reclaim that works while tasks run"
    )
    assert rows["Failed requests"][0] == "failed requests counted at 10 s or more"
    assert rows["Order"][0].startswith("rotated by repeat: round 0: glibc, jemalloc")
    assert "round 1: jemalloc, tcmalloc" in rows["Order"][0]
    assert rows["Memory sampling"][0] == "every 1 s, from the service launch"
    assert rows["Documents (/json, /xml)"][0] == "4 to 500 line items, log-uniform"


def test_method_table_shows_the_live_set_model_and_its_fill(tmp_path: Path):
    m = material(tmp_path)
    rows = {r[0]: r[1:] for r in cells(m.table("spec"))}
    model = " ".join(rows["Live set (/churn)"])
    assert "starts at 40 buffers per worker" in model and "a bound of 700 per worker" in model
    assert "each call allocates 16 buffers" in model and "2% of them live on as pins" in model
    assert f"freed after about {short_lifetime_text(m.view.run.spec)}" in model
    fill = rows["Live set fill"][0]
    # the spec's estimate, from the manifest, against the fill measured from the /churn answers
    assert fill == (
        f"estimated: {m.values['live.fill_estimate']}; measured: {m.values['live.fill_measured']}"
    )
    estimate = m.view.run.manifest["method"]["live_set_fill_s"]
    assert m.values["live.fill_estimate"] == f"{fmt_duration(estimate)} of load"
    assert m.values["live.fill_measured"].endswith("into the load")


def test_a_manifest_without_a_method_record_says_not_recorded(tmp_path: Path):
    m = material(tmp_path)

    def forget(manifest) -> None:
        del manifest["method"], manifest["order"]

    _edit_manifest(m, forget)
    rows = {r[0]: r[1:] for r in cells(m.table("spec"))}
    assert rows["Idle traffic"][0] == "not recorded"
    assert rows["Forced reclaim"][0] == "not recorded"
    assert rows["Order"][0] == "not recorded"
    assert (
        m.say("reclaim") == "The run recorded no forced reclaim, and not whether one was possible."
    )
