"""`allocstudy compare RUN_A RUN_B`: what changed between two runs, and whether it is noise.

The comparison itself is bench.report.changes's (the site's comparison page is built from
the same object); this module only finds the two runs, prints the result as rich tables or
as one JSON object, and turns a path that names no run into one line with exit code 2.
What differs in how the runs were made (spec, host, versions) is printed first: a change
between two machines is not an allocator's doing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.errors import EXIT_CANNOT_RUN, EXIT_OK, UsageError
from bench.report.changes import Change, RunComparison, by_verdict, compare_runs
from bench.report.errors import ReportError
from bench.report.runfolders import Run, load_run, run_at

__all__ = ["FAIL_ON", "compare_command", "load", "markdown", "parse_fail_on", "worse"]

#: How long a manifest value may print before it is cut (descriptions, hashes).
_CELL = 72


#: How a legend line names each rule (as the "decided by" column words it).
_RULE_NAMES = {
    "intervals": "95% intervals",
    "interval": "inside an interval",
    "aa_floor": "A/A floor",
    "tie_rel": "stated 5%",
}


def load(path: Path) -> Run:
    """The run a command-line path names; anything unusable is a UsageError (exit 2)."""
    try:
        return load_run(run_at(path))
    except ReportError as exc:
        raise UsageError(str(exc)) from None


def _cut(text: str) -> str:
    return text if len(text) <= _CELL else text[: _CELL - 1] + "…"


def _print(cmp: RunComparison, paths: tuple[Path, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    console.print(f"[bold]A[/] {cmp.a}  ({paths[0]})")
    console.print(f"[bold]B[/] {cmp.b}  ({paths[1]})")
    if cmp.differences:
        diffs = Table(
            title="the runs differ in how they were made (changes below may come from this)",
            title_justify="left",
        )
        for col in ("what", "A", "B"):
            diffs.add_column(col, overflow="fold")
        for d in cmp.differences:
            diffs.add_row(d.what, *(_cut(t) for t in d.texts()))
        console.print(diffs)
    else:
        console.print("same spec, host, tool and allocator versions")
    table = Table(title=f"B against A ({cmp.b} against {cmp.a})", title_justify="left")
    table.add_column("allocator", no_wrap=True)
    table.add_column("measure", min_width=10)
    for col in ("A", "B", "change"):  # long units wrap at their spaces
        table.add_column(col, justify="right", min_width=8)
    table.add_column("%", justify="right", no_wrap=True)
    table.add_column("verdict", min_width=9)
    table.add_column("decided by", min_width=10)
    style = {"better": "green", "worse": "red", None: "yellow"}
    previous = None
    for c in cmp.changes:
        t = c.texts()
        verdict = t["verdict"]
        if c.changed:
            verdict = f"[{style[c.direction]}]changed ({c.direction or 'moved'})[/]"
        elif c.changed is None:
            verdict = "[dim]not comparable[/]"
        table.add_row(
            c.allocator if c.allocator != previous else "",
            t["measure"],
            t["a"],
            t["b"],
            t["change"],
            t["change_pct"],
            verdict,
            t["rule"],
            end_section=False,
        )
        previous = c.allocator
    console.print(table)
    for rule, meaning in cmp.rules_used().items():
        console.print(f"[dim]{_RULE_NAMES[rule]}: {meaning}[/]")
    for o in cmp.only:
        console.print(f"{o.allocator}: only in run {o.run} (the other run: {o.other})")
    counts = by_verdict(cmp.changes)
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()) or "nothing to compare")


#: What `--fail-on` names, and the units of the measures each name covers.
FAIL_ON: dict[str, tuple[str, ...]] = {
    "memory": ("bytes", "ratio"),
    "latency": ("ms",),
    "throughput": ("per_s", "per_cpu_s"),
}


def parse_fail_on(text: str | None) -> tuple[str, ...]:
    """`memory,latency` as a tuple; an unknown name is a UsageError naming the known ones."""
    if not text:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    for n in names:
        if n not in FAIL_ON:
            raise UsageError(f"--fail-on {n}: not a measure group (use {', '.join(FAIL_ON)})")
    return names


def worse(cmp: RunComparison, groups: tuple[str, ...]) -> list[Change]:
    """The changes beyond the noise, in the bad direction, of the measures `groups` name."""
    units = {u for g in groups for u in FAIL_ON[g]}
    return [c for c in cmp.changes if c.direction == "worse" and c.metric.unit in units]


def markdown(cmp: RunComparison) -> str:
    """The comparison as Markdown, fit for a pull request: differences, then the changes."""
    lines = [f"**B** `{cmp.b}` against **A** `{cmp.a}`", ""]
    if cmp.differences:
        lines += ["The runs differ in how they were made:", "", "| what | A | B |", "|---|---|---|"]
        lines += [
            f"| {d.what} | {' | '.join(_md(t) for t in d.texts())} |" for d in cmp.differences
        ]
        lines.append("")
    lines += [
        "| allocator | measure | A | B | change | % | verdict | decided by |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for c in cmp.changes:
        t = c.texts()
        verdict = f"**changed ({c.direction or 'moved'})**" if c.changed else t["verdict"]
        cells = [t["allocator"], t["measure"], t["a"], t["b"], t["change"], t["change_pct"]]
        lines.append(f"| {' | '.join(_md(x) for x in cells)} | {verdict} | {_md(t['rule'])} |")
    counts = by_verdict(cmp.changes)
    lines += ["", ", ".join(f"{n} {v}" for v, n in counts.items()) or "nothing to compare"]
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def compare_command(
    path_a: Path,
    path_b: Path,
    *,
    as_json: bool,
    as_markdown: bool = False,
    fail_on: tuple[str, ...] = (),
) -> int:
    """Print run B against run A (rich tables, one JSON object, or Markdown).

    Exit 0, or with `fail_on` 1 when a measure of a named group moved beyond the noise in
    its bad direction (more memory, slower answers, less throughput): a gate for CI.
    """
    a, b = load(path_a), load(path_b)
    cmp = compare_runs(a, b)
    if as_json:
        data = {"paths": {"a": str(a.ref.path), "b": str(b.ref.path)}, **cmp.to_json()}
        json.dump(data, sys.stdout, indent=2)
        print()
    elif as_markdown:
        print(markdown(cmp))
    else:
        _print(cmp, (a.ref.path, b.ref.path))
    bad = worse(cmp, fail_on)
    for c in bad:
        t = c.texts()
        print(
            f"allocstudy: --fail-on: {c.allocator} {t['measure']} worse by {t['change']} "
            f"({t['change_pct']}, {t['rule']})",
            file=sys.stderr,
        )
    return EXIT_CANNOT_RUN if bad else EXIT_OK
