"""Sentences a reader needs to trust the numbers: what was not measured and why, the noise the
ties are judged against, disturbed and flagged repeats, the evidence that each allocator was
loaded, and version caveats.
"""

from __future__ import annotations

from bench.report.aggregate import Results
from bench.report.compare import TIE_REL
from bench.report.prose.rankings import names_text
from bench.report.provenance import evidence_state
from bench.report.units import fmt_pct, join_names, md_safe
from bench.report.versions import MIMALLOC_PURGE_FROM, mimalloc_v2_predates_purge, parse_version

__all__ = ["disturbed", "evidence", "flags", "noise", "not_measured", "version_notes"]


def not_measured(res: Results) -> str:
    """Every allocator without service data, with the reason: failed, skipped, or ran and
    recorded nothing (so none is ever silently dropped from the comparisons)."""
    missing = res.not_measured
    empty = [a for a in res.allocators if a.status == "ok" and a.name not in res.service]
    if not missing and not empty:
        return "Every allocator the spec names was measured."
    items = [
        f"{md_safe(a.name)} ({md_safe(a.status)}: {md_safe(a.reason or 'no reason recorded')}"
        + (f"; to fix: {md_safe(a.fix)}" if a.fix else "")
        + ")"
        for a in missing
    ]
    out = []
    if items:
        out.append(f"Not measured: {'; '.join(items)}.")
    if empty:
        out.append(
            f"{names_text([a.name for a in empty])} ran but the run recorded no service "
            "measurements for " + ("it." if len(empty) == 1 else "them.")
        )
    out.append("The comparisons below name them and leave them out.")
    return " ".join(out)


def noise(res: Results) -> str:
    n = max((r.settled.n for r in res.service.values()), default=0)
    if n > 1:
        return (
            f"Each allocator ran {n} times; two allocators count as tied when their "
            "values differ by less than the larger max–min spread of their repeats."
        )
    return (
        f"Each allocator ran once, so the run measures no noise of its own; two "
        f"allocators count as tied when their values differ by less than "
        f"{fmt_pct(TIE_REL)} of the larger one."
    )


def disturbed(res: Results) -> str:
    if not res.disturbed:
        return "The runner flagged no repeat as disturbed by other work on the machine."
    items = [
        f"{md_safe(d.allocator)} ({d.experiment}, repeat {d.repeat}: {md_safe(d.reason)})"
        for d in res.disturbed
    ]
    return (
        f"The runner flagged {len(items)} repeat{'s' if len(items) != 1 else ''} as "
        f"disturbed: {'; '.join(items)}. Treat their numbers with care; a quieter machine "
        "(nothing else running, fewer background services) gives cleaner ones."
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


def flags(res: Results) -> str:
    """Which allocators' numbers the method checks flagged, and why (from the summary)."""
    if not res.flagged:
        return (
            "No repeat was flagged by the method checks (failed requests, holes in the memory "
            "samples of the peak or settle window, a call of the runner inside the settle "
            "window, a control that rested less than the service or ran more threads than "
            "CPUs)."
        )
    groups: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for f in res.flagged:
        groups.setdefault((f.allocator, f.experiment), []).append((f.repeat, f.flags))
    out = []
    for (name, experiment), items in groups.items():
        reps = sorted({r for r, _ in items})
        which = (
            f"repeat {reps[0]}"
            if len(reps) == 1
            else "repeats " + join_names([str(r) for r in reps])
        )
        texts = list(dict.fromkeys(t for _, text in items for t in text.split("; ") if t))
        out.append(
            f"{md_safe(name)}'s {md_safe(experiment)} numbers are flagged ({which}): "
            f"{md_safe('; '.join(texts))}."
        )
    out.append("Flagged numbers stay in the medians and are marked in the full data table.")
    return " ".join(out)


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
