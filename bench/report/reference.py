"""The reference run: a compact real run committed with the project, shown until a local one exists.

A fresh clone has no results, yet `mkdocs build` must render the article: the plugin's
`reference:` folder (reference/ in the repository) holds one compact run per study, made
by scripts/make_reference.py (bench.results.compact). The site shows it only while the
results folder holds no run (bench.report.site), labels the page as the reference run of
its host and date, and lists it on the runs page either way, so a reader can tell the
shipped numbers from their own.
"""

from __future__ import annotations

import html
from typing import Any

from bench.report.runfolders import Study
from bench.report.units import md_safe
from bench.results.manifest import read_manifest

__all__ = ["REFERENCE_KEY", "reference_banner", "reference_label", "reference_section"]

#: The manifest key a compact reference run carries (bench.results.compact writes it).
REFERENCE_KEY = "reference"


def reference_label(manifest: dict[str, Any]) -> str | None:
    """'the reference run of vm (x86_64), 5 Dec 2026'; None for an ordinary run."""
    if not manifest.get(REFERENCE_KEY):
        return None
    host = manifest.get("host") or {}
    name = host.get("hostname") or "an unrecorded host"
    arch = f" ({host['machine']})" if host.get("machine") else ""
    date = str(manifest.get("started") or "an unrecorded date")[:10]
    return f"the reference run of {name}{arch}, {date}"


def reference_banner(manifest: dict[str, Any], spec_file: str) -> str | None:
    """The body of the page's banner for a reference run (None for an ordinary run)."""
    label = reference_label(manifest)
    if label is None:
        return None
    rec = manifest[REFERENCE_KEY]
    cut = rec.get("requests_kept") or "the requests the article reads"
    cmd = f"allocstudy run {spec_file}"
    return (
        f"This article shows {html.escape(label)}, committed with allocstudy so the study "
        f"can be read before anything is run. Its tables are compacted ({html.escape(cut)}). "
        f"Run <code>{html.escape(cmd)}</code> (or <code>make study</code>) and build the "
        "site again: your own run takes over."
    )


def reference_section(studies: list[Study], *, showing: bool) -> list[str]:
    """The runs page's list of reference runs (no lines when the project ships none)."""
    if not studies:
        return []
    state = "shown: no local run exists" if showing else "not shown: a local run takes over"
    lines = [
        "",
        "## Reference runs",
        "",
        "Committed with the project (reference/), made with scripts/make_reference.py from a "
        "real run.",
        "",
        "| study | run | host | date | state |",
        "|---|---|---|---|---|",
    ]
    for s in studies:
        m = read_manifest(s.current.path)
        host = m.get("host") or {}
        where = f"{host.get('hostname') or 'not recorded'} ({host.get('machine') or '?'})"
        lines.append(
            f"| {md_safe(s.name)} | {md_safe(s.current.run_id)} | {md_safe(where)} | "
            f"{md_safe(s.current.started or 'not recorded')} | {state} |"
        )
    return lines
