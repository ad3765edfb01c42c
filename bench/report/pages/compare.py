"""The site's comparison page: two runs' charts side by side and the table of their changes.

Built when the site is told to compare two runs (the plugin's `compare:` list, each a run
folder relative to the results root, `<study>/latest`, or a study). The table of changes and
the differences of how the runs were made come from bench.report.changes, the engine of
`allocstudy compare`, so the page and the terminal say the same thing. The charts are the
article's own (bench.report.charts), drawn once per run with one palette for both, so an
allocator has one colour on the whole page.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench.report.aggregate import Results, aggregate, control_measure
from bench.report.changes import RunComparison, compare_runs
from bench.report.charts.figure import OKABE_ITO, Names, colours, repeats_phrase
from bench.report.charts.memory import peak_settled
from bench.report.charts.throughput import throughput
from bench.report.datatable import Cell, Column, html_table
from bench.report.errors import ReportError
from bench.report.runfolders import Run, load_run, run_at
from bench.report.study import StudyView
from bench.report.units import md_safe

__all__ = ["COMPARE_PAGE", "Side", "comparison_page", "load_sides"]

#: Where the comparison page is generated (it joins the navigation as the runs page does).
COMPARE_PAGE = "compare.md"

#: A run of the comparison and its aggregate.
Side = tuple[Run, Results]

_IDS = re.compile(r'(\bid="|url\(#|href="#)(as-|chart-)')


def load_sides(results: Path, refs: Sequence[str], views: Mapping[str, StudyView]) -> list[Side]:
    """The two runs `refs` name under `results`, reusing a study's loaded run when it is one.

    A reference is a path relative to the results root (`quick/20261129T112203Z`,
    `quick/latest`, `quick`) or an absolute path; anything else is a ReportError that names
    the reference as written.
    """
    if len(refs) != 2:
        raise ReportError(
            f"compare: needs two runs (run A, then run B), got {len(refs)}: "
            f"{', '.join(refs) or 'none'}"
        )
    current = {v.study.current.path.resolve(): v for v in views.values()}
    sides: list[Side] = []
    for ref in refs:
        try:
            found = run_at(results / ref)
        except ReportError as exc:
            raise ReportError(f"compare: {ref!r} names no run under {results} ({exc})") from None
        view = current.get(found.path.resolve())
        if view is not None:
            sides.append((view.run, view.results))
        else:
            run = load_run(found)
            sides.append((run, aggregate(run)))
    return sides


def _side_ids(html: str, side: str) -> str:
    """Make a chart's ids unique on a page that holds the same chart for both runs."""
    return _IDS.sub(lambda m: f"{m.group(1)}{m.group(2)}{side}-", html)


def _columns(a: str, b: str) -> str:
    """Two blocks side by side (one block of HTML with no blank lines, so Markdown keeps it)."""
    return (
        '<div class="as-compare">'
        f'<div class="as-compare-side">{_side_ids(a, "a")}</div>'
        f'<div class="as-compare-side">{_side_ids(b, "b")}</div>'
        "</div>"
    )


def _verbatim(text: str) -> Cell:
    """Manifest text (a spec's description may hold anything) shown as written: escaped, and
    its braces as entities so the page renderer never reads them as a placeholder."""
    return Cell(html.escape(text).replace("{", "&#123;").replace("}", "&#125;"), html=True)


def _differences(cmp: RunComparison) -> str:
    if not cmp.differences:
        return (
            "The two runs were made from the same spec, on the same host, with the same tool "
            "and allocator versions."
        )
    table = html_table(
        [Column("what"), Column("run A"), Column("run B")],
        [[_verbatim(d.what), *map(_verbatim, d.texts())] for d in cmp.differences],
        table_id="run-differences",
    )
    return (
        "The runs differ in how they were made, so a change below may come from these "
        "rather than from an allocator:\n\n" + table
    )


def _changes(cmp: RunComparison) -> str:
    rows = []
    for c in cmp.changes:
        t = c.texts()
        verdict = t["verdict"] + (f" ({c.direction})" if c.direction else "")
        rows.append(
            [
                t["allocator"],
                t["measure"],
                Cell(t["a"], c.before),
                Cell(t["b"], c.after),
                Cell(t["change"], c.delta),
                Cell(t["change_pct"], c.delta_rel),
                verdict,
                t["rule"],
            ]
        )
    return html_table(
        [
            Column("allocator"),
            Column("measure"),
            Column("run A", True),
            Column("run B", True),
            Column("change", True),
            Column("change %", True, "the change as a percentage of run A's value"),
            Column("verdict"),
            Column("decided by"),
        ],
        rows,
        table_id="run-changes",
        sortable=True,
    )


def _names(a: Results, b: Results) -> tuple[Names, Names]:
    """Both runs' chart names over one palette: an allocator has one colour on the page, and
    an A/A duplicate takes its pair's and a variant its base's, as in the article
    (figure.Names.of)."""
    na, nb = Names.of(a), Names.of(b)
    again = {**na.again, **nb.again}
    variant = {**na.variant, **nb.variant}
    stock = [n for n in dict.fromkeys([*a.names, *b.names]) if n not in again and n not in variant]
    palette = colours(stock)
    for name, first in [*again.items(), *variant.items()]:
        palette[name] = palette.get(first) or OKABE_ITO[len(palette) % len(OKABE_ITO)]
    return Names(palette, na.again, na.variant), Names(palette, nb.again, nb.variant)


def _memory_caption(res: Results, names: Names) -> str:
    reps = repeats_phrase(((r.peak, r.settled), r.excluded) for r in res.service.values())
    shown = [n for n in res.names if n in res.service]
    return (
        f"peak (faint bar) and settled (solid bar) anonymous memory of the service per "
        f"allocator ({reps}), leanest settled first."
        + names.aa_sentence(shown, "hollow with a dashed outline")
        + names.variant_sentence(shown, "with a lighter fill")
    )


def _throughput_caption(res: Results, names: Names) -> str:
    key = "allocs_per_cpu_s" if control_measure(res) == "cpu" else "allocs_per_s"
    what = "allocations per CPU-second" if key == "allocs_per_cpu_s" else "allocations per second"
    reps = repeats_phrase(((getattr(c, key),), c.excluded) for c in res.control.values())
    shown = [n for n in res.names if n in res.control]
    return (
        f"C++ control {what} per allocator ({reps})."
        + names.aa_sentence(shown, "hollow with a dashed outline")
        + names.variant_sentence(shown, "with a lighter fill")
    )


def comparison_page(a: Side, b: Side) -> str:
    """Markdown of the comparison page: run B against run A."""
    (run_a, res_a), (run_b, res_b) = a, b
    cmp = compare_runs(run_a, run_b, results=(res_a, res_b))
    names = _names(res_a, res_b)
    memory = [
        peak_settled(res, n, f"Run {side}: {_memory_caption(res, n)}")
        for side, res, n in (("A", res_a, names[0]), ("B", res_b, names[1]))
    ]
    speed = [
        throughput(res, n, f"Run {side}: {_throughput_caption(res, n)}")
        for side, res, n in (("A", res_a, names[0]), ("B", res_b, names[1]))
    ]
    lines = [
        "---",
        "hide: [toc]  # the width goes to the two columns of charts",
        "---",
        "",
        "# Comparing two runs",
        "",
        f"Run A is {md_safe(cmp.a)}, run B is {md_safe(cmp.b)}; every change is B against A. "
        "`allocstudy compare` prints the same table in a terminal.",
        "",
        _differences(cmp),
        "",
        "## Memory of the service",
        "",
        "Each chart keeps its own scale; the table of changes below gives the differences.",
        "",
        _columns(*memory),
        "",
        "## Throughput of the C++ control",
        "",
        _columns(*speed),
        "",
        "## What changed",
        "",
        "A change is outside the noise when the rule in the last column says so:",
        "",
        *(f"- {md_safe(meaning)}" for meaning in cmp.rules_used().values()),
        "",
        _changes(cmp),
        "",
    ]
    if cmp.only:
        lines += [
            "Allocators measured in one run only: "
            + "; ".join(
                f"{md_safe(o.allocator)} (only in run {o.run}; the other run: {md_safe(o.other)})"
                for o in cmp.only
            )
            + ".",
            "",
        ]
    return "\n".join(lines)
