"""Which allocators recycle their workers, read from the resolved spec, and how it is said.

A spec recycles workers by `service.max_requests` (and `max_requests_jitter`), for every
allocator or for one variant of its own (`{name: glibc-recycled, base: glibc, service:
{max_requests: 2000}}`). Several parts of the article need to know: the method's spec table
(bench.report.experiment) says whether workers lived the whole run, the recycling section
pairs each recycled variant with its base, and the knobs section leaves the variants that only
recycle to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report import specview
from bench.report.aggregate import Results
from bench.report.runfolders import Run
from bench.report.units import fmt_count

__all__ = [
    "Recycling",
    "recycling_note",
    "recycling_of",
    "recycling_text",
    "recycling_text_of",
    "without_recycled",
]


@dataclass(frozen=True)
class Recycling:
    """How an allocator's workers were recycled: after max_requests to max_requests + jitter."""

    max_requests: int
    jitter: int

    def text(self) -> str:
        """'every 200 requests', 'every 200-220 requests'."""
        if self.jitter <= 0:
            return f"every {fmt_count(self.max_requests)} requests"
        return (
            f"every {fmt_count(self.max_requests)}-{fmt_count(self.max_requests + self.jitter)} "
            "requests"
        )


def _recycling(section: dict[str, Any]) -> Recycling | None:
    limit = section.get("max_requests")
    if not isinstance(limit, int) or isinstance(limit, bool):
        return None
    jitter = section.get("max_requests_jitter")
    return Recycling(limit, jitter if isinstance(jitter, int) else 0)


def recycling_of(spec: dict[str, Any]) -> dict[str, Recycling | None]:
    """Each allocator of a resolved spec (manifest["spec"]) with its recycling, None for none.

    A variant's own `service` keys override the spec's; the A/A duplicate recycles as its
    pair does.
    """
    base = {
        "max_requests": specview.get(spec, "service.max_requests"),
        "max_requests_jitter": specview.get(spec, "service.max_requests_jitter"),
    }
    out: dict[str, Recycling | None] = {}
    for entry in spec.get("allocators") or []:
        if isinstance(entry, str):
            out[entry] = _recycling(base)
        elif isinstance(entry, dict) and entry.get("name"):
            own = entry.get("service") if isinstance(entry.get("service"), dict) else {}
            out[str(entry["name"])] = _recycling({**base, **own})
    pair = spec.get("aa_pair")
    if isinstance(pair, str) and pair in out:
        out[f"{pair}-again"] = out[pair]
    return out


def recycling_text(run: Run) -> str | None:
    """How the run recycled, when every allocator did the same (None: not all alike)."""
    return recycling_text_of(recycling_of(run.spec))


def recycling_text_of(how: dict[str, Recycling | None]) -> str | None:
    """How allocators recycled, when all did the same (None: not all alike, or none)."""
    kinds = set(how.values())
    if len(kinds) == 1:
        (only,) = kinds
        return None if only is None else only.text()
    return None


def recycling_note(spec: dict[str, Any]) -> str:
    """How the spec table describes the workers' lives: never recycled, or by whom."""
    how = recycling_of(spec)
    recycled = [n for n, r in how.items() if r is not None]
    if not recycled:
        return "no per-request worker recycling, which would hide fragmentation"
    if len(recycled) == len(how) and (every := recycling_text_of(how)):
        return f"every worker recycled {every} (max_requests), which hides fragmentation"
    return (
        f"recycled only under {', '.join(recycled)} (see Recycling workers); the others' "
        "workers serve the whole run, since recycling hides fragmentation"
    )


def without_recycled(run: Run, res: Results) -> Results:
    """`res` without the variants that only recycle their workers (a variant of no
    environment of its own whose recycling differs from its base's): they turn no allocator
    knob, so the knobs section (bench.report.sections.knobs) leaves them to the recycling
    section."""
    how = recycling_of(run.spec)
    apart = {
        a.name
        for a in res.allocators
        if a.base and not a.env and how.get(a.name) != how.get(a.base) and not a.same_as
    }
    apart |= {a.name for a in res.allocators if a.same_as in apart}
    return res.without(apart)
