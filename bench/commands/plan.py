"""`allocstudy plan SPEC`: the cells of a run in order, each phase's length, the total.

An estimate before anyone waits: bench.experiments.plan computes it from the spec alone,
so the cells of allocators this machine cannot provide are counted too (a run skips them
in seconds); `--cluster-hosts N` adds the time on N hosts working side by side.
"""

from __future__ import annotations

import json

from bench.errors import EXIT_OK, UsageError
from bench.experiments.plan import cluster_total, plan_cells
from bench.report.units import fmt_duration
from bench.spec import Spec

__all__ = ["plan_command"]


def plan_command(
    spec: Spec,
    *,
    only: list[str] | None,
    hosts: list[int],
    skip_service: bool,
    skip_control: bool,
    as_json: bool,
) -> int:
    """Print the plan (a table, or one JSON object); exit 0."""
    if any(h < 1 for h in hosts):
        raise UsageError("--cluster-hosts: a number of hosts, 1 or more")
    names = [n for n in spec.allocator_names if only is None or n in only]
    cells = plan_cells(spec, names, skip_service=skip_service, skip_control=skip_control)
    total = sum(c.seconds for c in cells)
    on = {h: cluster_total(cells, h) for h in hosts}
    if as_json:
        data = {
            "spec": spec.name,
            "spec_sha256": spec.spec_hash,
            "overrides": list(spec.overrides),
            "cells": [
                {**c.cell.as_record(), "phases": dict(c.phases), "seconds": c.seconds}
                for c in cells
            ],
            "total_s": total,
            "cluster_total_s": {str(h): s for h, s in on.items()},
        }
        print(json.dumps(data, indent=2))
        return EXIT_OK
    from rich.table import Table

    from bench.commands.runs import terminal_console

    table = Table(
        title=f"plan of {spec.name}: {len(cells)} cells, in run order", title_justify="left"
    )
    for col in ("#", "allocator", "experiment", "repeat", "phases (s)", "cell", "ends at"):
        table.add_column(
            col, justify="right" if col in ("#", "repeat", "cell", "ends at") else "left"
        )
    at = 0.0
    for i, c in enumerate(cells, 1):
        at += c.seconds
        phases = ", ".join(f"{name} {s:g}" for name, s in c.phases)
        table.add_row(
            str(i), c.cell.allocator, c.cell.experiment, str(c.cell.repeat), phases,
            fmt_duration(c.seconds), fmt_duration(at),
        )  # fmt: skip
    console = terminal_console()
    console.print(table)
    console.print(
        f"estimated total: {fmt_duration(total)} on this machine (the phases plus "
        "a start-up allowance per cell; an allocator that cannot be had here is skipped in "
        "seconds)"
    )
    for h, s in on.items():
        console.print(f"on a cluster of {h} host{'s' if h > 1 else ''}: about {fmt_duration(s)}")
    return EXIT_OK
