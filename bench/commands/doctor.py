"""`allocstudy doctor`: can this machine run a spec, and if not, what fixes it.

It resolves and verifies every allocator of the spec (or every built-in one), and reads the
machine facts the study records: memory accounting, THP, swap, CPU governor, CPU pressure and
the compilers the C++ control and source builds need.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from bench.allocators import knobs, timers
from bench.allocators.buildcache import compilers
from bench.allocators.registry import Allocator, resolve, resolve_spec
from bench.allocators.verification import Verification, verify
from bench.errors import EXIT_CANNOT_RUN, EXIT_OK
from bench.measure import machine
from bench.measure.groups import cgroup_support
from bench.measure.memlimit import unavailable_reason
from bench.spec import BUILTIN_ALLOCATORS, Spec

__all__ = ["Problem", "diagnose", "run"]


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str | None
    blocking: bool


def _allocator_row(alloc: Allocator, check: Verification) -> dict[str, Any]:
    return {
        "name": alloc.name,
        "found": alloc.available,
        "verified": check.ok,
        "version": check.version,
        "path": str(alloc.library) if alloc.library else check.malloc_library,
        "sha256": alloc.sha256,
        "kind": alloc.kind,
        "env": alloc.env,
        "reason": None if check.ok else (alloc.reason or check.reason),
        "fix": alloc.fix,
        "knobs": check.knobs,
        # when it gives memory back on its own, as read back (bench.allocators.timers)
        "timers": timers.to_records(check.timers),
        "return_horizon_s": timers.horizon_s(check.timers),
    }


def diagnose(spec: Spec | None) -> dict[str, Any]:
    """Everything doctor knows, as one JSON-ready object."""
    allocs = resolve_spec(spec) if spec else [resolve(n) for n in BUILTIN_ALLOCATORS]
    rows = [_allocator_row(a, verify(a)) for a in allocs]
    cg = cgroup_support()
    pressure = machine.cpu_pressure()
    tools = compilers()
    problems: list[Problem] = []
    for row in rows:
        if not row["found"]:
            problems.append(
                Problem(f"{row['name']}: unavailable: {row['reason']}", row["fix"], blocking=False)
            )
        elif not row["verified"]:
            what = (
                "found, but its settings do not read back as asked"
                if row["knobs"] and row["reason"] == knobs.failure_reason(row["knobs"])
                else "found but not serving malloc"
            )
            problems.append(
                Problem(
                    f"{row['name']}: {what}: {row['reason']}",
                    None,
                    blocking=True,
                )
            )
    if not any(r["verified"] for r in rows):
        problems.append(Problem("no allocator can be run", None, blocking=True))
    control = spec is None or spec.control.enabled
    if control and not tools.get("c++"):
        problems.append(
            Problem("no C++ compiler for the control", "apt-get install -y g++", blocking=True)
        )
    if cg.mode == "none":
        limited = spec is not None and spec.service.memory_limit_mb is not None
        problems.append(  # a spec's memory limit needs the cgroup: then it blocks the run
            Problem(
                (unavailable_reason(cg.mode, cg.reason) or cg.reason) if limited else cg.reason,
                "run as root on a machine with a memory cgroup",
                blocking=limited,
            )
        )
    thp = machine.thp_mode()
    if thp not in (None, "never") and not machine.thp_writable():
        problems.append(
            Problem(
                f"THP is {thp!r} and not writable: it stays as it is", "run as root", blocking=False
            )
        )
    swap = machine.swap_bytes()
    if swap:
        problems.append(
            Problem(
                f"swap is on ({swap / 1e6:.0f} MB): pages may leave memory",
                "swapoff -a",
                blocking=False,
            )
        )
    return {
        "spec": spec.name if spec else None,
        "can_run": not any(p.blocking for p in problems),
        "allocators": rows,
        "machine": {
            "cgroup_mode": cg.mode,
            "cgroup": cg.reason,
            "thp": thp,
            "thp_writable": machine.thp_writable(),
            "swap_bytes": swap,
            "governor": machine.governor(),
            "cpu_pressure_avg10": pressure.avg10 if pressure else None,
            "cpu_pressure_avg60": pressure.avg60 if pressure else None,
            "root": machine.is_root(),
            "compilers": tools,
            "host": machine.host_info(),
        },
        "problems": [p.__dict__ for p in problems],
    }


def _returns(row: dict[str, Any]) -> str:
    """When the allocator gives memory back on its own: 'opt.dirty_decay_ms 10000 ms', 'no
    timer', or '-' where nothing was read back."""
    found = [t for t in row.get("timers") or [] if t.get("value") is not None]
    if found:
        return ", ".join(f"{t['setting']} {t['value']}" for t in found)
    return "no timer" if row.get("timers") else "-"


def _print_tables(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    title = f"allocators of {report['spec']}" if report["spec"] else "built-in allocators"
    table = Table(title=title, title_justify="left")
    for col in ("allocator", "found", "verified", "version"):
        table.add_column(col, no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("library / reason", overflow="fold")
    for row in report["allocators"]:
        mark = {True: "[green]yes[/]", False: "[red]no[/]"}
        detail = row["path"] if row["verified"] else f"[yellow]{row['reason']}[/]"
        table.add_row(
            row["name"],
            mark[row["found"]],
            mark[row["verified"]],
            row["version"] or "-",
            detail or "-",
        )
    console.print(table)
    timed = Table(title="when each gives memory back on its own", title_justify="left")
    timed.add_column("allocator", no_wrap=True)
    timed.add_column("return settings, read back", overflow="fold")
    for row in report["allocators"]:
        if row.get("timers"):
            timed.add_row(row["name"], _returns(row))
    if timed.row_count:
        console.print(timed)
    m = report["machine"]
    facts = Table(title="machine", title_justify="left", show_header=False)
    facts.add_column("fact")
    facts.add_column("value")
    governor = m["governor"] or "none (no cpufreq on this machine)"
    pressure = (
        "n/a"
        if m["cpu_pressure_avg10"] is None
        else (f"{m['cpu_pressure_avg10']:.1f}% (10 s), {m['cpu_pressure_avg60']:.1f}% (60 s)")
    )
    for key, value in (
        ("memory accounting", f"{m['cgroup_mode']}: {m['cgroup']}"),
        ("transparent huge pages", f"{m['thp']} ({'writable' if m['thp_writable'] else 'fixed'})"),
        ("swap", "off" if not m["swap_bytes"] else f"{m['swap_bytes'] / 1e6:.0f} MB"),
        ("CPU governor", governor),
        ("CPU pressure", pressure),
        *((f"{k}", v or "[red]missing[/]") for k, v in m["compilers"].items()),
    ):
        facts.add_row(key, str(value))
    console.print(facts)
    for p in report["problems"]:
        lead = "[red]problem[/]" if p["blocking"] else "[yellow]note[/]"
        fix = f"\n    fix: {p['fix']}" if p["fix"] else ""
        console.print(f"{lead}: {p['what']}{fix}", highlight=False)
    verdict = (
        "[green]this spec can run here[/]"
        if report["can_run"]
        else ("[red]this spec cannot run here[/]")
    )
    console.print(verdict)


def run(spec: Spec | None, *, as_json: bool) -> int:
    """Print the diagnosis (tables, or one JSON object); EXIT_CANNOT_RUN when it cannot run."""
    report = diagnose(spec)
    if as_json:
        json.dump(report, sys.stdout, indent=2, default=str)
        print()
    else:
        _print_tables(report)
    return EXIT_OK if report["can_run"] else EXIT_CANNOT_RUN
