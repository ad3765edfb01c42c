"""Sentences of "Leak or retention?": per verdict, which allocators and by how much.

The model (sections.leak.model) reduces the run and judges each allocator; this says it,
grouped by verdict so that five allocators with the same story make one sentence, not five.
The numbers are the growth from the ready service to the end of idle, as in the table beside.
"""

from __future__ import annotations

from bench.report.prose.rankings import names_text, pct_text
from bench.report.sections.leak.model import NO_GROWTH_REL, LeakResult, growth_text
from bench.report.units import fmt_mb, join_names, md_safe

__all__ = ["NOT_RECORDED", "leak_or_retention"]

#: What a run made before the live heap was recorded says.
NOT_RECORDED = (
    "This run did not record the program's live heap (it was made before allocstudy "
    "recorded one), so it cannot tell a leak from retention; a new run of the same spec can."
)


def _each(results: list[LeakResult], say: str) -> str:
    """'glibc (anon +120 MB, heap +8 MB)' for each, joined."""
    parts = []
    for r in results:
        g = r.at_rest
        heap = "" if g.heap is None else f", {say} {growth_text(g.heap)}"
        parts.append(f"{md_safe(r.name)} (anonymous memory {growth_text(g.anon)}{heap})")
    return join_names(parts)


def _kept(results: list[LeakResult]) -> str:
    return join_names([f"{fmt_mb(r.at_rest.kept or 0.0)} under {md_safe(r.name)}" for r in results])


def _blocks(results: list[LeakResult]) -> str:
    grown = [(r.name, g) for r in results if (g := r.blocks_growth) is not None]
    if not grown:
        return ""
    each = join_names(
        [f"{pct_text(abs(g))} {'more' if g >= 0 else 'fewer'} under {md_safe(n)}" for n, g in grown]
    )
    return f" CPython's count of allocated blocks agrees: {each} at the end of idle than at ready."


def leak_or_retention(results: dict[str, LeakResult]) -> str:
    """The section's sentences, one per verdict that occurred (see the module)."""
    if not results:
        return NOT_RECORDED
    groups: dict[str, list[LeakResult]] = {}
    for r in results.values():
        groups.setdefault(r.at_rest.verdict, []).append(r)
    out = []
    if kept := groups.get("allocator"):
        out.append(
            f"Retention, not a leak: {_each(kept, 'the program’s own heap')}, from the ready "
            f"service to the end of idle. The program had freed nearly all of what was added, "
            f"and the allocator kept it resident: {_kept(kept)}. Another allocator, or another "
            "setting of this one, changes that number; fixing the program does not."
        )
    if program := groups.get("program"):
        out.append(
            f"The program holds its growth: {_each(program, 'its own heap')}. The allocator "
            "only follows what the program keeps: a leak or a cache that fills, which another "
            f"allocator would not remove.{_blocks(program)}"
        )
    if both := groups.get("both"):
        out.append(
            f"Both grew: {_each(both, 'the program’s own heap')}; the program holds part of "
            f"the growth and the allocator keeps the rest ({_kept(both)})."
        )
    if none := groups.get("none"):
        names = [r.name for r in none]
        out.append(
            f"Under {names_text(names)} the anonymous memory at rest was within "
            f"{pct_text(NO_GROWTH_REL)} of the ready service's, or below it: nothing to explain."
        )
    if unknown := groups.get("unknown"):
        names = [r.name for r in unknown]
        verb = "offers" if len(names) == 1 else "offer"
        out.append(
            f"{names_text(names)} {verb} no count of the program's live bytes that this study "
            f"reads, so the growth under {_each(unknown, 'heap')} is not judged."
            f"{_blocks(unknown)}"
        )
    return " ".join(out)
