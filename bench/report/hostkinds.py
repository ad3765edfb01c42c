"""The note on a run whose cells ran on more than one kind of host (bench.cluster).

Numbers from different CPUs, kernels or page sizes must not be pooled silently: when a
cluster run's manifest names more than one host kind, the page opens with a banner that says
so and sets the service's settled memory side by side per kind (median over the kind's
repeats), so a reader sees whether the kinds agree before reading the pooled figures below.
"""

from __future__ import annotations

import html
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["host_kind_note", "settled_by_kind"]


def settled_by_kind(
    manifest: Mapping[str, Any], summary: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """Median service settled memory (MB) per host kind and allocator, from summary rows
    (rows of a host the manifest does not describe count under `unknown`)."""
    hosts = manifest.get("hosts") or {}
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in summary:
        if row.get("experiment") != "service" or row.get("settled_anon_bytes") is None:
            continue
        kind = (hosts.get(row.get("host")) or {}).get("kind") or "unknown"
        values[kind][row["allocator"]].append(row["settled_anon_bytes"] / 1e6)
    return {
        kind: {name: statistics.median(v) for name, v in by_alloc.items()}
        for kind, by_alloc in values.items()
    }


def host_kind_note(manifest: Mapping[str, Any], summary: Sequence[Mapping[str, Any]]) -> str | None:
    """A banner with a table by host kind when the run spans more than one kind, else None."""
    kinds = manifest.get("host_kinds") or []
    if len(kinds) < 2:
        return None
    hosts = manifest.get("hosts") or {}
    settled = settled_by_kind(manifest, summary)
    allocators = [a["name"] for a in manifest.get("allocators") or []]
    head = "".join(f"<th>{html.escape(n)}</th>" for n in allocators)
    body = []
    for kind in kinds:
        names = sorted(h for h, info in hosts.items() if info.get("kind") == kind)
        cells = "".join(
            f"<td>{settled[kind][n]:,.0f}</td>" if n in settled.get(kind, {}) else "<td>—</td>"
            for n in allocators
        )
        body.append(
            f"<tr><td>{html.escape(kind)}</td><td>{html.escape(', '.join(names))}</td>{cells}</tr>"
        )
    return (
        '<div class="admonition warning as-banner" role="note">'
        '<p class="admonition-title">Several kinds of host</p>'
        f"<p>This run's cells ran on {len(kinds)} kinds of host; the figures below pool "
        "their repeats. Service settled memory by kind (MB, median of its repeats):</p>"
        f"<table><thead><tr><th>host kind</th><th>hosts</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )
