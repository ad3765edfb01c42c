"""Banners at the top of a page: the things a reader must know before trusting its numbers.

An incomplete run, data older than its spec, a page that mixes runs, a machine that
disturbed the measurement: each is a visible note that says what happened and what to do.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from bench.report.aggregate import Results, aa_untied
from bench.report.hostkinds import host_kind_note
from bench.report.reference import reference_banner
from bench.report.runfolders import Freshness, Run, Study
from bench.report.units import join_names

__all__ = ["banner", "banners"]


def banner(title: str, body: str, level: str = "warning") -> str:
    """One Material-styled admonition, as plain HTML (no Markdown extension needed)."""
    return (
        f'<div class="admonition {level} as-banner" role="note">'
        f'<p class="admonition-title">{html.escape(title)}</p><p>{body}</p></div>'
    )


def _code(text: str) -> str:
    return f"<code>{html.escape(text)}</code>"


def banners(
    study: Study, run: Run, fresh: Freshness, res: Results, runs_used: Iterable[str] = ()
) -> list[str]:
    """Every banner that applies to a page showing this run."""
    out = []
    spec_file = str(run.manifest.get("spec_file") or f"specs/{study.name}.yaml")
    if (body := reference_banner(run.manifest, spec_file)) is not None:
        out.append(banner("Reference run", body, "info"))
    if run.ref.status != "complete":
        out.append(
            banner(
                "Incomplete run",
                f"Run {html.escape(run.ref.run_id)} did not complete (status: "
                f"{html.escape(run.ref.status)}); shown because it is the {study.chosen_by}. "
                f"Allocators it did not reach are listed as not measured. Finish it with "
                f"{_code(f'allocstudy run {spec_file} --resume')}.",
            )
        )
    if fresh.state == "stale":
        out.append(
            banner(
                "Data older than its spec",
                f"{html.escape(fresh.detail)}. The numbers below describe the spec as it was "
                f"run; re-run {_code(f'allocstudy run {spec_file}')} to measure the current one.",
            )
        )
    elif fresh.state == "unknown":
        out.append(banner("Spec not checked", html.escape(fresh.detail) + ".", "info"))
    reused = sorted({a.run_id for a in res.allocators if a.run_id and a.run_id != run.ref.run_id})
    used = sorted(set(runs_used))
    if reused or len(used) > 1:
        names = used if len(used) > 1 else [run.ref.run_id, *reused]
        out.append(
            banner(
                "This page mixes runs",
                f"Its numbers come from more than one run ({html.escape(join_names(names))}); "
                "machines and moments differ between runs, so compare them with care.",
            )
        )
    if kinds := host_kind_note(run.manifest, run.summary):  # a cluster run over unlike hosts
        out.append(kinds)
    _, apart = aa_untied(res)
    if apart:
        out.append(
            banner(
                "Provisional rankings",
                f"The A/A pair ({html.escape(res.aa.name if res.aa else '')} run twice) did not "
                f"tie on {html.escape(join_names(apart))} under this page's own noise rule: "
                "two runs of one allocator differed more than the rule allows, so read every "
                "ranking below as provisional, and re-run on a quieter machine or with more "
                "repeats.",
            )
        )
    if res.disturbed:
        n = len(res.disturbed)
        out.append(
            banner(
                "Disturbed measurements",
                f"The runner flagged {n} repeat{'s' if n != 1 else ''} as disturbed (other work "
                "competed for the CPU). They are marked in the full data table; run again on a "
                "quiet machine for cleaner numbers.",
            )
        )
    return out
