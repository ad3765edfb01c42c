"""The method as the run recorded it: idle traffic, forced reclaim, order, the workers' live sets.

The article may only claim a step the run took. What the runner did (rather than what a spec
asked for) is in the manifest: its top-level `method` and `order`, and per allocator the
`live_set` records of /stats and the sampler's `reclaim_ran`. This module reads them into
plain values, defensively: a missing key reads as "not recorded" (None), never as a default
that would put words in the run's mouth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Method",
    "idle_stats_calls",
    "live_records",
    "method_of",
    "ready_workers",
    "reclaim_ran",
    "reclaim_reason",
]


@dataclass(frozen=True)
class Method:
    """The recorded method of one run (None: the manifest does not say)."""

    idle_rate: float | None
    idle_traffic: str | None
    #: blocks and block_bytes of each idle probe's allocator calls (None: a bare probe, or
    #: a run made before probes could make them)
    idle_probe: tuple[int, int] | None
    settle_window_s: float | None
    reclaim_possible: bool | None
    reclaim_how: str | None
    memory_sampled_from: str | None
    latency_failures: str | None
    live_set_fill_s: float | None
    order_rule: str | None
    rounds: tuple[tuple[int, tuple[str, ...]], ...]


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None


def _probe(x: Any) -> tuple[int, int] | None:
    if not isinstance(x, dict):
        return None
    blocks, size = x.get("blocks"), x.get("block_bytes")
    ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (blocks, size))
    return (blocks, size) if ok else None


def method_of(manifest: dict[str, Any]) -> Method:
    """The manifest's `method` and `order`, read defensively."""
    m = manifest.get("method") if isinstance(manifest.get("method"), dict) else {}
    reclaim = m.get("reclaim") if isinstance(m.get("reclaim"), dict) else {}
    possible = reclaim.get("possible")
    rounds = []
    for entry in manifest.get("order") or []:
        if isinstance(entry, dict) and isinstance(entry.get("allocators"), list):
            rounds.append((int(entry.get("round") or 0), tuple(map(str, entry["allocators"]))))
    return Method(
        idle_rate=_float(m.get("idle_rate")),
        idle_traffic=str(m["idle_traffic"]) if m.get("idle_traffic") else None,
        idle_probe=_probe(m.get("idle_probe")),
        settle_window_s=_float(m.get("settle_window_s")),
        reclaim_possible=possible if isinstance(possible, bool) else None,
        reclaim_how=str(reclaim["how"]) if reclaim.get("how") else None,
        memory_sampled_from=str(m["memory_sampled_from"]) if m.get("memory_sampled_from") else None,
        latency_failures=str(m["latency_failures"]) if m.get("latency_failures") else None,
        live_set_fill_s=_float(m.get("live_set_fill_s")),
        order_rule=str(m["order"]) if m.get("order") else None,
        rounds=tuple(sorted(rounds)),
    )


def reclaim_reason(how: str | None) -> str | None:
    """Why no reclaim was possible, from the runner's "none: <why>" text (None if not given)."""
    if not how:
        return None
    text = how.strip()
    if text.lower().startswith("none"):
        text = text[4:].lstrip(" :;,-")
    return text or None


def _allocator(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in manifest.get("allocators") or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return {}


def live_records(manifest: dict[str, Any], name: str, repeat: int) -> dict[str, dict[str, Any]]:
    """The /stats records of one repeat of one allocator, by moment (ready, load_end, ...)."""
    out = {}
    for rec in _allocator(manifest, name).get("live_set") or []:
        if isinstance(rec, dict) and int(rec.get("repeat") or 0) == repeat and rec.get("at"):
            out[str(rec["at"])] = rec
    return out


def ready_workers(
    manifest: dict[str, Any], name: str, repeat: int
) -> tuple[dict[int, int], float | None]:
    """Each worker's live bytes when the service was ready, and when that was recorded."""
    rec = live_records(manifest, name, repeat).get("ready") or {}
    workers = {
        int(w["pid"]): int(w["live_bytes"])
        for w in rec.get("workers") or []
        if isinstance(w, dict) and w.get("pid") is not None and w.get("live_bytes") is not None
    }
    return workers, _float(rec.get("t_s"))


def reclaim_ran(manifest: dict[str, Any], names: Sequence[str]) -> dict[str, bool | None]:
    """Per allocator: whether the forced reclaim ran in every repeat (None: not recorded)."""
    out: dict[str, bool | None] = {}
    for name in names:
        recs = [r for r in _allocator(manifest, name).get("sampler") or [] if isinstance(r, dict)]
        flags = [r["reclaim_ran"] for r in recs if isinstance(r.get("reclaim_ran"), bool)]
        out[name] = all(flags) if flags else None
    return out


def idle_stats_calls(manifest: dict[str, Any]) -> int:
    """How many of the runner's own /stats calls fell in an idle phase, over all repeats.

    The runner asks every worker for its live set as idle begins (`load_end`); the call at
    `idle_end` comes after the last idle sample. Each call reaches the allocator, so a
    sentence about what the idle phase contained must count it.
    """
    count = 0
    for entry in manifest.get("allocators") or []:
        for rec in (entry.get("sampler") or []) if isinstance(entry, dict) else []:
            calls = rec.get("stats_calls") if isinstance(rec, dict) else None
            count += sum(
                1 for c in calls or [] if isinstance(c, dict) and c.get("at") == "load_end"
            )
    return count
