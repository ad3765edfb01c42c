"""Why memory climbs: what the service's requests do, and what was measured (the subject).

Sentences: {{ say.workload }}, {{ say.subject }}.

For the built-in service that is the `/churn` live set and the JSON and XML traffic; for a
spec that points `service.app` at an application of its own, the same paragraphs must name
that app and its request mix instead, or the article would describe a workload that never
ran. The request mix is read from the manifest (`workload`, written by the runner from the
request file), never from the file itself, which the machine building the site may not have.
Whether the run hosted an app of its own (`hosted_app`) is also read by the headline and the
method sections.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report import specview
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.units import join_names, md_safe

__all__ = ["SYNTHETIC", "WorkloadSection", "hosted_app", "subject", "workload"]


#: The built-in service's workload, as the article has always described it.
SYNTHETIC = (
    "The experiment builds that situation on purpose, the way a real service builds it: with "
    "traffic. Each worker starts with the few buffers it allocates at start-up, and every call "
    "to a `/churn` endpoint allocates a batch more. Most of them live a few seconds, as "
    "request-scoped state and sessions do, and are freed by the worker's next request once "
    "their time is up; a few live on as pins, the way cached values and pooled objects do, "
    "until the live set reaches its bound, after which random pins are replaced. New buffers "
    "land in the holes the dead ones left, so pins spread over the whole heap, while ordinary "
    "JSON and XML endpoints supply the short-lived allocations of a real service."
)

#: How many requests of the mix the sentence names before summing up the rest.
_NAMED = 6


def _code(text: str) -> str:
    """Text as a Markdown code span (where escapes would show literally: no md_safe)."""
    return "`" + text.replace("`", "'").replace("\n", " ") + "`"


def hosted_app(run: Run) -> str | None:
    """The app the run studied ("module:attr"), or None for the built-in service."""
    app = specview.get(run.spec, "service.app")
    return str(app) if app else None


def _detected(run: Run) -> str | None:
    """The interface the workers served the app by, as the first of them reported it."""
    for entry in run.manifest.get("allocators") or []:
        for record in entry.get("live_set") or []:
            for worker in record.get("workers") or []:
                if worker.get("interface"):
                    return str(worker["interface"])
    return None


def _interface(run: Run) -> str:
    """'ASGI', 'WSGI, detected', ...: what the spec said, or what the workers detected."""
    workload = run.manifest.get("workload") or {}
    asked = workload.get("interface") or specview.get(run.spec, "service.interface") or "auto"
    kind = asked if asked != "auto" else _detected(run)
    name = {"asgi": "ASGI", "wsgi": "WSGI"}.get(str(kind), "ASGI or WSGI")
    return f"{name}, detected" if asked == "auto" else name


def _mix(requests: list[dict[str, Any]]) -> str:
    """'GET /notes/{id} (40%), POST /notes (30%) and 3 more (30%)' by weight, largest first."""
    total = sum(float(r.get("weight") or 0) for r in requests) or 1.0
    ranked = sorted(requests, key=lambda r: -float(r.get("weight") or 0))
    parts = []
    for r in ranked[:_NAMED]:
        path = str(r.get("path", "")).split("?", 1)[0]  # the query holds the random fields
        call = _code(f"{r.get('method', '')} {path}")
        name = str(r.get("name") or "")
        named = f"{md_safe(name)}, " if name and not name.startswith(f"{r.get('method')} ") else ""
        parts.append(f"{call} ({named}{float(r.get('weight') or 0) / total:.0%})")
    if rest := ranked[_NAMED:]:
        share = sum(float(r.get("weight") or 0) for r in rest) / total
        parts.append(f"{len(rest)} more ({share:.0%})")
    return join_names(parts)


def workload(run: Run) -> str:
    """The paragraph that says what traffic built the memory the article measures."""
    app = hosted_app(run)
    if app is None:
        return SYNTHETIC
    workload = run.manifest.get("workload") or {}
    requests = workload.get("requests") or []
    source = workload.get("requests_file") or specview.get(run.spec, "service.requests")
    name = str(source).rsplit("/", 1)[-1] if source else "its request file"
    mix = (
        f" {len(requests)} kinds of request, drawn at random with their weights: {_mix(requests)}."
        if requests
        else ""
    )
    converted = (
        f" The mix was converted from a browser's HAR export ({md_safe(str(workload['har']))})."
        if workload.get("har")
        else ""
    )
    return (
        f"This run studies an application of its own rather than the built-in service: "
        f"{_code(app)} ({_interface(run)}), served by the same supervisor and workers, "
        f"with the traffic of {_code(name)}.{mix}{converted} Whether it builds a staircase depends "
        "on what it keeps between requests; the sections below say what it did under each "
        "allocator, and [Leak or retention?](#leak-or-retention) whether its growth was its "
        "own or the allocator's."
    )


def subject(run: Run) -> str:
    """The first sentence of the experiment's description: which application ran."""
    app = hosted_app(run)
    if app is None:
        return "One FastAPI application runs under each allocator in turn."
    return f"The application {_code(app)} runs under each allocator in turn."


@dataclass(frozen=True)
class Workload:
    run: Run


class WorkloadSection(Section[Workload]):
    name = "workload"
    title = "Why memory climbs"

    def compute(self, loaded: Loaded) -> Workload:
        return Workload(loaded.run)

    def sentences(self, data: Workload) -> Entries:
        return {
            "workload": lambda: workload(data.run),
            "subject": lambda: subject(data.run),
        }
