"""The allocators: each one's version as it reported itself, and every per-allocator value.

Table {{ table.allocators }}; sentence {{ say.version_notes }}; values `alloc.<name>.*`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import experiment
from bench.report.aggregate import Results
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.stats import classify_fingerprint, shed_fraction
from bench.report.units import (
    NOT_MEASURED,
    fmt_given_back,
    fmt_mb,
    fmt_mops,
    fmt_mops_cpu,
    fmt_ms,
    fmt_pct,
    fmt_ratio,
    md_safe,
)
from bench.report.versions import (
    MIMALLOC_PURGE_FROM,
    mimalloc_v2_predates_purge,
    original_version,
    parse_version,
)

__all__ = ["AllocatorsSection"]


@dataclass(frozen=True)
class Allocators:
    run: Run
    full: Results
    res: Results


class AllocatorsSection(Section[Allocators]):
    name = "allocators"
    title = "The allocators"

    def compute(self, loaded: Loaded) -> Allocators:
        return Allocators(loaded.run, loaded.full, loaded.res)

    def values(self, data: Allocators) -> dict[str, str]:
        return _allocator_values(data.res)

    def sentences(self, data: Allocators) -> Entries:
        return {"version_notes": lambda: version_notes(data.res)}

    def tables(self, data: Allocators, prefix: str) -> Entries:
        return {"allocators": lambda: experiment.allocators_table(data.run, data.full)}


def _allocator_values(res: Results) -> dict[str, str]:
    out: dict[str, str] = {}
    for a in res.allocators:
        p = f"alloc.{a.name}."
        out[p + "status"] = a.status
        out[p + "reason"] = a.reason or "none"
        out[p + "version"] = a.version or "not recorded"
        out[p + "library"] = a.library or "(the C library itself)"
        s, c = res.service.get(a.name), res.control.get(a.name)
        out[p + "peak.mb"] = fmt_mb(s.peak.center) if s else NOT_MEASURED
        out[p + "settled.mb"] = fmt_mb(s.settled.center) if s else NOT_MEASURED
        out[p + "shed"] = (
            fmt_pct(shed_fraction(s.peak.center, s.settled.center)) if s else NOT_MEASURED
        )
        out[p + "given_back"] = fmt_given_back(s.given_back.center if s and s.given_back else None)
        for when in ("peak", "settled"):
            ratio = getattr(s, f"overhead_{when}") if s else None
            out[p + f"overhead_{when}"] = fmt_ratio(ratio.center) if ratio else NOT_MEASURED
        out[p + "ready.mb"] = fmt_mb(s.ready.center) if s and s.ready else NOT_MEASURED
        out[p + "flags"] = (
            "; ".join(
                f"{f.experiment} repeat {f.repeat}: {f.flags}"
                for f in res.flagged
                if f.allocator == a.name
            )
            or "none"
        )
        out[p + "original_version"] = original_version(a)
        out[p + "fingerprint"] = (
            classify_fingerprint(s.peak.center, s.settled.center) if s else NOT_MEASURED
        )
        for pct in ("p50", "p95", "p99"):
            sample = getattr(s, pct) if s else None
            out[p + pct + ".ms"] = fmt_ms(sample.center) if sample else NOT_MEASURED
        out[p + "control.mops"] = (
            fmt_mops(c.allocs_per_s.center) if c and c.allocs_per_s else NOT_MEASURED
        )
        out[p + "control.settled.mb"] = (
            fmt_mb(c.settled.center) if c and c.settled else NOT_MEASURED
        )
        out[p + "control.mops_per_cpu"] = (
            fmt_mops_cpu(c.allocs_per_cpu_s.center) if c and c.allocs_per_cpu_s else NOT_MEASURED
        )
    return out


def version_notes(res: Results) -> str:
    """A caveat for a measured mimalloc v2 older than the 2.1 purge semantics ('' if none)."""
    old = [a for a in res.allocators if a.name in res.service and mimalloc_v2_predates_purge(a)]
    if not old:
        return ""
    purge = ".".join(map(str, MIMALLOC_PURGE_FROM))
    items = []
    for a in old:
        major, minor = parse_version(a.version) or (0, 0)
        version = md_safe(a.version)
        items.append(f"{md_safe(a.name)} here is mimalloc {version}, of the {major}.{minor} series")
    return (
        f"{'; '.join(items)}: that predates the purge semantics of mimalloc {purge} (when and "
        "how freed memory is returned to the kernel), so its idle behaviour may differ from a "
        "current v2."
    )
