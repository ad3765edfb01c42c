"""A run folder made small enough to commit: the reference run a fresh clone's site shows.

The article reads the manifest, the summary, memory, control, restarts and retention tables in
full, and from the requests table only two things (bench.report.runfolders's digest): the live
payload each /churn answer reported, and what the idle phase received. A default run holds
120,000 requests per allocator, so the compact copy keeps only those rows, and blanks the
columns the article never reads (send times, error texts), which zstd then stores in next to
nothing. Every table stays a valid run table (same schema, same format version), so the report
reads a compact run exactly as it reads the original. Logs are left out.

The manifest gains a `reference` record (what was cut, from which folder, when), which the
site shows as the page's "reference run" label (bench.report.reference); `spec_file` is
made relative to the project, so no path of the machine that made it leaks into a checkout.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from bench.results.manifest import read_manifest, write_manifest
from bench.results.tables import read_table, write_table

__all__ = ["REQUEST_COLUMNS_BLANKED", "compact_run"]

#: Tables copied whole (each rewritten with zstd, as the runner writes them).
_WHOLE = ("summary", "memory", "control", "restarts", "retention", "stages")
#: Columns of the requests table the article never reads: kept in the schema, emptied.
REQUEST_COLUMNS_BLANKED = ("intended_s", "sent_s", "error")


def _requests_kept(table: pa.Table) -> pa.Table:
    """The answers that carry a live payload, and every idle-phase request."""
    live = pc.and_(
        pc.and_(pc.is_valid(table["live_bytes"]), pc.is_valid(table["worker"])),
        pc.is_valid(table["done_s"]),
    )
    idle = pc.fill_null(pc.equal(table["phase"], "idle"), False)
    kept = table.filter(pc.or_(live, idle))
    for col in REQUEST_COLUMNS_BLANKED:
        i = kept.schema.get_field_index(col)
        kept = kept.set_column(i, col, pa.nulls(kept.num_rows, kept.schema.field(col).type))
    return kept


def compact_run(run_dir: Path, reference: Path) -> Path:
    """Write the compact copy of `run_dir` as reference/<spec>/<run id>/; its folder.

    The study's earlier reference runs are removed (one reference per study) and its
    `latest` file names the new one; a compact copy of an incomplete run is refused, since
    the article would open on an "incomplete run" banner.
    """
    manifest = read_manifest(run_dir)
    if manifest.get("status") != "complete":
        raise ValueError(f"{run_dir}: the run is {manifest.get('status')}, not complete")
    study = str(manifest.get("spec_name") or run_dir.parent.name)
    run_id = str(manifest.get("run_id") or run_dir.name)
    study_dir = reference / study
    if study_dir.exists():
        shutil.rmtree(study_dir)
    dest = study_dir / run_id
    dest.mkdir(parents=True)
    for name in _WHOLE:
        src = run_dir / f"{name}.arrow"
        if src.is_file():
            write_table(dest / src.name, name, read_table(src, name))
    requests = run_dir / "requests.arrow"
    total = kept = 0
    if requests.is_file():
        table = read_table(requests, "requests")
        small = _requests_kept(table)
        total, kept = table.num_rows, small.num_rows
        write_table(dest / "requests.arrow", "requests", small)
    write_manifest(dest, _manifest(manifest, run_dir, total, kept))
    (study_dir / "latest").write_text(run_id + "\n", encoding="utf-8")
    return dest


def _manifest(m: dict[str, Any], run_dir: Path, total: int, kept: int) -> dict[str, Any]:
    out = dict(m)
    project = m.get("spec_file_project")
    if project:  # the spec as the project names it; the maker's absolute path stays out
        out["spec_file"] = project
    out["reference"] = {
        "made_from": run_dir.name,
        "made": datetime.now(UTC).isoformat(timespec="seconds"),
        "requests_total": total,
        "requests_kept": (
            f"requests.arrow keeps {kept:,} of {total:,} requests: the answers that "
            "report a live payload and the idle phase's probes; logs left out"
        ),
    }
    return out
