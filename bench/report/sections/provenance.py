"""Provenance: where the run came from, and the proof each allocator really served malloc.

Tables {{ table.provenance }}, {{ table.allocator_provenance }}; sentence {{ say.evidence }}.
The run's own record is the identity section's values (bench.report.sections.identity).

A preload that fails is silent (the program runs on glibc), so the article shows, for every
allocator, the library that was found serving malloc in each process the runner checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report.aggregate import Results
from bench.report.datatable import Cell, Column, html_table
from bench.report.lockcheck import LockCheck
from bench.report.runfolders import Freshness, Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.identity import identity_values
from bench.report.units import md_safe

__all__ = [
    "ProvenanceSection",
    "allocator_provenance_table",
    "evidence",
    "evidence_state",
    "evidence_text",
    "provenance_table",
]


def evidence_state(entry: dict[str, Any], expected: str | None) -> str:
    """One process's proof: 'proven', 'contradicted' or 'unchecked'.

    `malloc_library` is what dladdr(malloc) named inside the process, `mapped` whether the
    library shows in /proc/PID/maps (None when it could not be read). Paths are compared by
    file name, since /lib and /usr/lib may be the same folder seen through a symlink.
    """
    lib, mapped = entry.get("malloc_library"), entry.get("mapped")
    if mapped is False:
        return "contradicted"
    if lib and expected and Path(str(lib)).name != Path(str(expected)).name:
        return "contradicted"
    return "proven" if lib or mapped else "unchecked"


def provenance_table(
    run: Run, fresh: Freshness, values: dict[str, str], lock: LockCheck | None = None
) -> str:
    m = run.manifest
    v = values
    commit = v["tool.commit"] + (" (with uncommitted changes)" if v["tool.dirty"] == "yes" else "")
    rows = [
        ["Run", f"{v['run.id']} ({v['run.status']})"],
        ["Started", v["run.started"]],
        ["Finished", f"{v['run.finished']} ({v['run.duration']})"],
        ["allocstudy", f"{v['tool.version']}, commit {commit}"],
        ["Spec", f"{v['spec.file']}: {fresh.detail}"],
        ["Spec hash (sha256)", str(m.get("spec_sha256") or "not recorded")],
        ["Host", f"{v['host.name']}: {v['host.cpu']}, {v['host.cores']} cores, {v['host.memory']}"],
        ["Kernel", v["host.kernel"]],
        ["glibc", v["host.glibc"]],
        ["Python", v["host.python"]],
        *([["Python packages", lock.detail]] if lock is not None else []),
        ["Transparent huge pages", v["confounds.thp"]],
        ["Swap", v["confounds.swap"]],
        ["cgroup mode", v["confounds.cgroup"]],
    ]
    return html_table([Column("what"), Column("value")], rows, table_id="provenance-table")


def _proof(entries: list[dict[str, Any]], expected: str | None) -> str:
    if not entries:
        return "none recorded"
    ok = sum(1 for e in entries if evidence_state(e, expected) == "proven")
    libs = sorted({str(e.get("malloc_library")) for e in entries if e.get("malloc_library")})
    roles = sorted({str(e.get("role")) for e in entries if e.get("role")})
    what = f"{ok} of {len(entries)} processes"
    if roles:
        what += f" ({', '.join(roles)})"
    return f"{what}; malloc from {', '.join(libs) or 'unknown'}"


def evidence_text(evidence: dict[str, list[dict[str, Any]]], expected: str | None) -> str:
    """'service: 5 of 5 processes …; control: 3 of 3 …' for one allocator."""
    if not any(evidence.values()):
        return "none recorded"
    return "; ".join(
        f"{exp}: {_proof(list(v), expected)}" for exp, v in sorted(evidence.items()) if v
    )


def allocator_provenance_table(res: Results) -> str:
    rows = []
    for a in res.allocators:
        sha = a.sha256 or ""
        sha_cell = Cell(
            f'<code title="{md_safe(sha)}">{md_safe(sha[:16])}…</code>' if sha else "not recorded",
            html=bool(sha),
        )
        rows.append(
            [
                a.name,
                a.status if not a.reason else f"{a.status}: {a.reason}",
                a.library or "the C library (no preload)",
                a.version or "not recorded",
                sha_cell,
                evidence_text(a.evidence, a.expected_library),
            ]
        )
    return html_table(
        [
            Column("allocator"),
            Column("status"),
            Column("library"),
            Column("version"),
            Column("sha256"),
            Column("loaded in"),
        ],
        rows,
        table_id="allocator-provenance",
    )


def evidence(res: Results) -> str:
    checks, bad = 0, []
    for a in res.allocators:
        if a.status != "ok":
            continue
        states = [evidence_state(e, a.expected_library) for v in a.evidence.values() for e in v]
        checks += len(states)
        wrong, unchecked = states.count("contradicted"), states.count("unchecked")
        if not states:
            bad.append(f"{md_safe(a.name)} (no evidence recorded)")
        elif wrong:
            bad.append(
                f"{md_safe(a.name)} ({wrong} of {len(states)} processes served by another library)"
            )
        elif unchecked:
            bad.append(
                f"{md_safe(a.name)} ({unchecked} of {len(states)} processes could not be checked)"
            )
    if not bad:
        return (
            f"Every measured allocator was found serving malloc in every process checked "
            f"({checks} checks)."
        )
    return f"Evidence of loading is missing or negative for: {'; '.join(bad)}."


@dataclass(frozen=True)
class Provenance:
    run: Run
    full: Results
    fresh: Freshness
    lock: LockCheck


class ProvenanceSection(Section[Provenance]):
    name = "provenance"
    title = "Provenance"

    def compute(self, loaded: Loaded) -> Provenance:
        return Provenance(loaded.run, loaded.full, loaded.freshness, loaded.lock)

    def sentences(self, data: Provenance) -> Entries:
        return {"evidence": lambda: evidence(data.full)}

    def tables(self, data: Provenance, prefix: str) -> Entries:
        values = identity_values(data.run, data.fresh)
        return {
            "provenance": lambda: provenance_table(data.run, data.fresh, values, data.lock),
            "allocator_provenance": lambda: allocator_provenance_table(data.full),
        }
