"""What a cell sends back from its host: its rows as Arrow IPC, its manifest entry as JSON.

A payload is a plain dict of bytes, which Dask ships without pickling any of allocstudy's
classes (client and hosts may run different builds; a payload of another format is refused by
name, never misread). The rows travel as one Arrow IPC stream per table, in the table's stored
schema with its name and format version in the metadata, the same checks a run folder's files
get; the manifest entry (status, reason, timestamps, evidence, phases, the host's fingerprint
and confounds) travels as JSON, as the manifest will hold it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from bench.errors import UserError
from bench.experiments.cell import Cell, CellResult, empty_rows
from bench.results.tables import FORMAT_VERSION, STORED_SCHEMAS, TABLES, to_table

__all__ = ["PAYLOAD_FORMAT", "Delivery", "WireError", "decode", "encode"]

#: Bumped whenever the payload's layout or the meaning of one of its keys changes.
PAYLOAD_FORMAT = "1"


class WireError(UserError):
    """A payload this version cannot read (another allocstudy on the host, or damage)."""


@dataclass
class Delivery:
    """A decoded payload: the cell's result, and the host it ran on as that host saw itself."""

    result: CellResult
    fingerprint: dict[str, Any] = field(default_factory=dict)
    confounds: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    #: the service workers' own output files, by path under the repeat's log folder
    logs_files: dict[str, bytes] = field(default_factory=dict)


def _table_bytes(name: str, rows: list[dict[str, Any]]) -> bytes:
    table = to_table(name, rows)
    meta = {b"allocstudy.table": name.encode(), b"allocstudy.format": FORMAT_VERSION.encode()}
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _table_rows(name: str, data: bytes) -> list[dict[str, Any]]:
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
        table.validate(full=True)
    except (pa.ArrowException, ValueError) as exc:
        raise WireError(f"the {name} rows of a cell are not readable Arrow IPC ({exc})") from None
    meta = table.schema.metadata or {}
    if meta.get(b"allocstudy.table") != name.encode():
        raise WireError(f"a cell sent rows labelled {meta.get(b'allocstudy.table')!r} as {name}")
    if meta.get(b"allocstudy.format") != FORMAT_VERSION.encode():
        raise WireError(
            f"a cell's {name} rows are of table format {meta.get(b'allocstudy.format')!r}, "
            f"this client reads {FORMAT_VERSION}: install the same allocstudy on every host"
        )
    if not table.schema.remove_metadata().equals(STORED_SCHEMAS[name]):
        raise WireError(f"a cell's {name} rows have other columns than this client's table")
    return table.to_pylist()


def encode(
    result: CellResult,
    *,
    fingerprint: dict[str, Any],
    confounds: dict[str, Any],
    log: list[str] | None = None,
) -> dict[str, Any]:
    """A cell's result as the payload its task returns."""
    meta = {
        "cell": result.cell.as_record(),
        "status": result.status,
        "host": result.host,
        "started": result.started,
        "finished": result.finished,
        "reason": result.reason,
        "entry": result.entry,
        "verified": result.verified,
        "page_cache_dropped": result.page_cache_dropped,
        "fingerprint": fingerprint,
        "confounds": confounds,
        "log": log or [],
    }
    return {
        "format": PAYLOAD_FORMAT,
        "meta": json.dumps(meta, default=str).encode(),
        "tables": {name: _table_bytes(name, result.rows.get(name, [])) for name in TABLES},
    }


def decode(payload: Any) -> Delivery:
    """A payload back into a cell's result; WireError for one this version cannot read."""
    if not isinstance(payload, dict) or payload.get("format") != PAYLOAD_FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise WireError(
            f"a cell sent a payload of format {got!r}, this client reads {PAYLOAD_FORMAT}: "
            "install the same allocstudy on every host"
        )
    meta = json.loads(payload["meta"])
    rows = empty_rows()
    for name, data in payload["tables"].items():
        if name in rows:
            rows[name] = _table_rows(name, data)
    result = CellResult(
        cell=Cell.from_record(meta["cell"]),
        status=meta["status"],
        host=meta["host"],
        started=float(meta["started"]),
        finished=float(meta["finished"]),
        reason=meta.get("reason"),
        rows=rows,
        entry=meta.get("entry") or {},
        verified=meta.get("verified"),
        page_cache_dropped=meta.get("page_cache_dropped"),
    )
    return Delivery(
        result=result,
        fingerprint=meta.get("fingerprint") or {},
        confounds=meta.get("confounds") or {},
        log=meta.get("log") or [],
    )
