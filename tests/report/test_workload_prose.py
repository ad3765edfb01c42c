"""The article names what was studied: the built-in service's churn, or the user's own app
and its request mix (from the manifest, never from the request file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report.runfolders import Run, RunRef
from bench.report.sections.workload import SYNTHETIC, subject, workload


def _run(spec: dict[str, Any], workload_record: dict[str, Any] | None = None) -> Run:
    manifest: dict[str, Any] = {"spec": spec, "allocators": []}
    if workload_record is not None:
        manifest["workload"] = workload_record
    ref = RunRef("myapp", "20261129T000000Z", Path("."), "complete", None, None)
    return Run(ref=ref, manifest=manifest, memory=[], control=[], summary=[])


def test_the_built_in_service_keeps_its_churn_description() -> None:
    run = _run({"service": {}})
    assert workload(run) == SYNTHETIC
    assert subject(run).startswith("One FastAPI application")


def test_a_hosted_app_is_named_with_its_request_mix_by_weight() -> None:
    requests = [
        {"name": f"r{i}", "method": "GET", "path": f"/p{i}", "weight": w}
        for i, w in enumerate([1, 4, 1, 1, 1, 1, 1])
    ]
    run = _run(
        {"service": {"app": "notes_asgi:app", "requests": "/x/examples/myapp.jsonl"}},
        {"interface": "asgi", "requests_file": "myapp.jsonl", "requests": requests},
    )
    text = workload(run)
    assert "`notes_asgi:app` (ASGI)" in text  # as the spec said, not detected
    assert "`myapp.jsonl`" in text
    assert "7 kinds of request" in text
    assert text.index("`GET /p1` (r1, 40%)") < text.index("`GET /p0` (r0, 10%)")  # largest first
    assert "1 more (10%)" in text
    assert "/churn" not in text
    assert "`notes_asgi:app`" in subject(run)


def test_an_interface_left_to_detection_is_named_as_the_workers_detected_it() -> None:
    run = _run({"service": {"app": "notes_wsgi:app", "interface": "auto"}}, {"interface": None})
    run.manifest["allocators"] = [
        {"name": "glibc", "live_set": [{"at": "ready", "workers": [{"interface": "wsgi"}]}]}
    ]
    assert "`notes_wsgi:app` (WSGI, detected)" in workload(run)
