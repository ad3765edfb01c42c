"""`allocstudy runs`, `show` and `export`, and the summary `run` prints: answers in the terminal.

Everything here reads what a run wrote, through the report engine the article uses
(bench.report.runfolders to find and load, bench.report.aggregate to reduce,
bench.report.headline_table to format), so the terminal prints the same numbers the site will.
Tables go to stdout; a path that names no run is one line and exit 2
(bench.commands.compare.load)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.commands.compare import load
from bench.errors import EXIT_OK, UsageError
from bench.report.aggregate import aggregate
from bench.report.errors import ReportError
from bench.report.headline_table import HEADLINE_COLUMNS, HeadlineRow, headline_rows
from bench.report.runfolders import DOWNLOAD_ORDER, Run, RunRef, find_studies, load_run, run_at
from bench.results.manifest import ManifestError, read_manifest
from bench.results.tables import TableError, read_table

__all__ = [
    "export_command",
    "print_summary",
    "terminal_console",
    "runs_command",
    "show_command",
]


def _headline_table(title: str, rows: list[HeadlineRow]) -> Any:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, col in enumerate(HEADLINE_COLUMNS):
        table.add_column(col, justify="left" if i in (0, len(HEADLINE_COLUMNS) - 1) else "right")
    for row in rows:
        table.add_row(*row.cells())
    return table


def terminal_console() -> Any:
    """A rich console for tables on stdout."""
    from rich.console import Console

    # wide enough that a number never wraps when stdout is a pipe (tests, scripts, logs)
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def print_summary(run_dir: Path) -> None:
    """The headline of a finished run, printed before its folder (which stays the last line).

    A run that cannot be summarised (nothing measured, a table missing) says so in one line
    on stderr: the run itself is kept and the folder is still printed.
    """
    try:
        run = load_run(load_ref(run_dir))
        rows = headline_rows(aggregate(run))
    except (ReportError, UsageError) as exc:
        print(f"allocstudy: no summary: {exc}", file=sys.stderr)
        return
    except Exception as exc:  # noqa: BLE001 (the run is done: its folder must still print)
        print(f"allocstudy: no summary ({type(exc).__name__}: {exc})", file=sys.stderr)
        return
    if rows:
        terminal_console().print(_headline_table(_title(run), rows))


def load_ref(path: Path) -> RunRef:
    """The run a path names (compare's lookup, without reading its tables)."""
    try:
        return run_at(path)
    except ReportError as exc:
        raise UsageError(str(exc)) from None


def _title(run: Run) -> str:
    host = (run.manifest.get("host") or {}).get("hostname") or "an unrecorded host"
    return f"{run.ref.study}/{run.ref.run_id} ({run.ref.status}, {host})"


def _allocator_names(manifest: dict[str, Any]) -> list[str]:
    return [str(a.get("name")) for a in manifest.get("allocators") or [] if a.get("name")]


def runs_command(results: Path, *, as_json: bool) -> int:
    """Every run under a results folder, newest first within each spec."""
    skipped: list[Any] = []
    try:
        studies = find_studies(results, skipped=skipped)
    except ReportError as exc:
        raise UsageError(str(exc)) from None
    listed = []
    for study in studies:
        for ref in study.runs:
            try:
                m = read_manifest(ref.path)
            except ManifestError:
                m = {}  # find_studies read it a moment ago; listed with what is known
            listed.append(
                {
                    "spec": study.name,
                    "id": ref.run_id,
                    "status": ref.status,
                    "shown": ref.run_id == study.current.run_id,
                    "allocators": _allocator_names(m),
                    "date": ref.started,
                    "host": (m.get("host") or {}).get("hostname"),
                    "path": str(ref.path),
                }
            )
    if as_json:
        print(json.dumps({"results": str(results), "runs": listed}, indent=2))
        return EXIT_OK
    if not listed:
        print(f"no runs under {results}/ (make one with: allocstudy run specs/quick.yaml)")
        return EXIT_OK
    from rich.table import Table

    table = Table(
        title=f"runs under {results}/ (* the one the article shows)", title_justify="left"
    )
    for col in ("spec", "id", "status", "allocators", "date", "host"):
        table.add_column(col)
    for r in listed:
        table.add_row(
            r["spec"],
            r["id"] + (" *" if r["shown"] else ""),
            r["status"],
            ", ".join(r["allocators"]),
            r["date"] or "not recorded",
            r["host"] or "not recorded",
        )
    terminal_console().print(table)
    for s in skipped:
        print(f"left out {s.path}: {s.problem}", file=sys.stderr)
    return EXIT_OK


def show_command(path: Path, *, as_json: bool) -> int:
    """A run's headline per allocator and its flags (rich table, or one JSON object)."""
    run = load(path)
    res = aggregate(run)
    rows = headline_rows(res)
    m = run.manifest
    about = {
        "spec": run.ref.study,
        "id": run.ref.run_id,
        "status": run.ref.status,
        "path": str(run.ref.path),
        "started": run.ref.started,
        "finished": run.ref.finished,
        "host": m.get("host") or {},
        "spec_sha256": m.get("spec_sha256"),
        "overrides": m.get("spec_overrides") or [],
    }
    if as_json:
        print(json.dumps({**about, "allocators": [r.to_json() for r in rows]}, indent=2))
        return EXIT_OK
    console = terminal_console()
    console.print(_headline_table(_title(run), rows))
    if about["overrides"]:
        console.print("spec changed for this run: --set " + " --set ".join(about["overrides"]))
    for a in res.not_measured:
        console.print(f"{a.name}: {a.status}")
    return EXIT_OK


def _table(run_dir: Path, name: str) -> pa.Table:
    try:
        table = read_table(run_dir / f"{name}.arrow", name)
    except TableError as exc:
        raise UsageError(str(exc)) from None
    return table.replace_schema_metadata(None)


def export_command(path: Path, *, fmt: str, table: str | None, out: Path | None) -> int:
    """Write a run's tables as CSV, Parquet or JSON lines; print each file written.

    Files go to `out` (default: <run>/export/), named <table>.<format>; JSON is one object a
    line (what pandas.read_json(lines=True), polars and DuckDB read). The schema metadata
    (the table's name and format version) stays in the Arrow files; the exports are plain.
    """
    ref = load_ref(path)
    present = [t for t in DOWNLOAD_ORDER if (ref.path / f"{t}.arrow").is_file()]
    if table is not None and table not in present:
        raise UsageError(
            f"--table {table}: no such table in {ref.path} (it has: {', '.join(present)})"
        )
    dest = out if out is not None else ref.path / "export"
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{dest}: cannot write the export ({exc.strerror})") from None
    for name in [table] if table else present:
        data = _table(ref.path, name)
        target = dest / f"{name}.{'jsonl' if fmt == 'json' else fmt}"
        _write(data, target, fmt)
        print(target)
    return EXIT_OK


def _write(data: pa.Table, target: Path, fmt: str) -> None:
    if fmt == "csv":
        import pyarrow.csv as csv

        csv.write_csv(_flat(data), target)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(data, target, compression="zstd")
    else:
        with target.open("w", encoding="utf-8") as f:
            for row in data.to_pylist():
                f.write(json.dumps(row, default=str) + "\n")


def _flat(data: pa.Table) -> pa.Table:
    """CSV holds no lists or structs: such columns are written as their JSON text."""
    cols = []
    for field, col in zip(data.schema, data.columns, strict=True):
        if pa.types.is_nested(field.type):
            col = pa.array([None if v is None else json.dumps(v) for v in col.to_pylist()])
        cols.append(col)
    return pa.table(cols, names=data.column_names)
