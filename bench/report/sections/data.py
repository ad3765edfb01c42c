"""The full data: one row per experiment, allocator and repeat, and the run's Arrow files.

Tables {{ table.full }} (every summary row, sortable) and {{ table.downloads }} (the exact
Arrow files beside it). Flagged and disturbed repeats are shown as they are, with the reason,
never left out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.report.datatable import Cell, Column, html_table
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.units import fmt_count, fmt_mb, fmt_mops, fmt_ms

__all__ = ["DataSection", "downloads", "full_table"]


_COLUMNS = [
    Column("experiment"),
    Column("allocator"),
    Column("repeat", True),
    Column("peak MB", True, "peak anonymous memory, MB (10^6 bytes)"),
    Column("settled MB", True, "anonymous memory after the idle phase, MB"),
    Column("after reclaim MB", True, "anonymous memory after the forced reclaim, MB"),
    Column("ready MB", True, "anonymous memory of the freshly started service, MB"),
    Column("live at load end MB", True, "live payload of all workers at the end of load, MB"),
    Column("overhead at peak", True, "(peak - ready) / live payload grown during load"),
    Column("overhead settled", True, "(settled - ready) / live payload grown until idle ended"),
    Column("given back %", True, "(peak - settled) / peak, percent"),
    Column("p50 ms", True),
    Column("p95 ms", True),
    Column("p99 ms", True),
    Column("achieved req/s", True),
    Column("requests", True),
    Column("errors", True),
    Column("restarts", True, "workers recycled after their limit of requests (service)"),
    Column("hit a restart", True, "load requests that hit a restarting worker (service)"),
    Column("million allocs/s", True, "C++ control allocations per second, millions"),
    Column(
        "million allocs/CPU-s",
        True,
        "C++ control allocations per CPU-second of the churn, millions",
    ),
    Column("CPU pressure %", True),
    Column("foreign CPU %", True, "CPU used by processes not part of the study, % of machine"),
    Column("send late p99 ms", True),
    Column("disturbed"),
    Column("flags", False, "method flags of the repeat: failed requests, sampling holes, ..."),
]


def _num(value: Any, fmt: Any, scale: float = 1.0) -> Cell:
    if value is None:
        return Cell("", sort="")
    text = fmt(value).split(" ")[0] if fmt else f"{value:g}"
    return Cell(text, sort=float(value) / scale if scale != 1.0 else float(value))


def full_table(summary: list[dict[str, Any]]) -> str:
    rows = []
    for r in sorted(
        summary,
        key=lambda r: (
            str(r.get("experiment")),
            str(r.get("allocator")),
            int(r.get("repeat") or 0),
        ),
    ):
        rows.append(
            [
                Cell(str(r.get("experiment"))),
                str(r.get("allocator")),
                Cell(str(r.get("repeat")), sort=int(r.get("repeat") or 0)),
                _num(r.get("peak_anon_bytes"), fmt_mb),
                _num(r.get("settled_anon_bytes"), fmt_mb),
                _num(r.get("reclaimed_anon_bytes"), fmt_mb),
                _num(r.get("ready_anon_bytes"), fmt_mb),
                _num(r.get("load_end_live_bytes"), fmt_mb),
                _num(r.get("overhead_peak"), lambda x: f"{x:.2f}"),
                _num(r.get("overhead_settled"), lambda x: f"{x:.2f}"),
                _num(r.get("given_back_share"), lambda x: f"{x * 100:.1f}"),
                _num(r.get("p50_ms"), fmt_ms),
                _num(r.get("p95_ms"), fmt_ms),
                _num(r.get("p99_ms"), fmt_ms),
                _num(r.get("achieved_rps"), lambda x: f"{x:,.1f}"),
                _num(r.get("requests"), fmt_count),
                _num(r.get("errors"), fmt_count),
                _num(r.get("restarts"), fmt_count),
                _num(r.get("requests_during_restart"), fmt_count),
                _num(r.get("allocs_per_s"), fmt_mops),
                _num(r.get("allocs_per_cpu_s"), fmt_mops),
                _num(r.get("cpu_pressure_pct"), lambda x: f"{x:.1f}"),
                _num(r.get("foreign_cpu_pct"), lambda x: f"{x:.1f}"),
                _num(r.get("send_late_p99_ms"), fmt_ms),
                ("yes: " + str(r.get("disturbed_reason") or "")) if r.get("disturbed") else "no",
                ("yes: " + str(r.get("flags") or "")) if r.get("flagged") else "no",
            ]
        )
    return html_table(
        _COLUMNS,
        rows,
        sortable=True,
        table_id="full-data",
        caption="Every summary row of the run, flagged and disturbed repeats included (the "
        "last columns say why); choose a heading to sort.",
    )


def downloads(links: Mapping[str, str], sizes: Mapping[str, int]) -> str:
    """A list of links to the run's Arrow files (the exact files the page was built from)."""
    items = []
    for name, url in links.items():
        size = sizes.get(name)
        kb = (
            f" ({size / 1e6:.1f} MB)"
            if size and size >= 1e6
            else f" ({size / 1e3:.0f} KB)"
            if size
            else ""
        )
        items.append(
            f'<li><a href="{html.escape(url)}" download>{html.escape(name)}.arrow</a>{kb}</li>'
        )
    if not items:
        return "<p>No data files were found for this run.</p>"
    return '<ul class="as-downloads">' + "".join(items) + "</ul>"


@dataclass(frozen=True)
class Data:
    run: Run
    #: where the run's Arrow files are served, from the site root
    data_dir: str


class DataSection(Section[Data]):
    name = "data"
    title = "The full data"

    def compute(self, loaded: Loaded) -> Data:
        return Data(loaded.run, loaded.data_dir)

    def tables(self, data: Data, prefix: str) -> Entries:
        files = data.run.files
        links = {name: f"{prefix}{data.data_dir}/{path.name}" for name, path in files.items()}
        sizes = {name: path.stat().st_size for name, path in files.items()}
        return {
            "full": lambda: full_table(data.run.summary),
            "downloads": lambda: downloads(links, sizes),
        }
