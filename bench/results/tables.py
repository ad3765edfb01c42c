"""The Arrow tables a run writes (docs/guide/data-format.md): schemas, atomic writes, reads.

Every table carries its name and a format version in the schema metadata, so a reader can
refuse a file it does not understand instead of misreading it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.feather as feather

from bench.errors import UserError

__all__ = [
    "ADDED_COLUMNS",
    "FORMAT_VERSION",
    "HOST_COLUMN",
    "SCHEMAS",
    "STORED_SCHEMAS",
    "TABLES",
    "TableError",
    "WRITTEN_WHEN_FILLED",
    "atomic_write_bytes",
    "read_table",
    "table_rows",
    "to_table",
    "write_table",
]

#: Bumped whenever a column changes meaning or a required column is removed (a column added
#: without either goes into ADDED_COLUMNS instead, so earlier files of the version still read).
FORMAT_VERSION = "2"

SCHEMAS: dict[str, pa.Schema] = {
    "memory": pa.schema(
        [
            ("experiment", pa.string()),  # "service" or "control"
            ("allocator", pa.string()),
            ("repeat", pa.int32()),
            ("t_s", pa.float64()),  # seconds since this allocator's run began
            # service: start (launch to ready), warmup, load, idle, reclaim (only where a forced
            # reclaim ran); control: start, fill, churn, idle
            ("phase", pa.string()),
            ("anon_bytes", pa.int64()),
            ("late_s", pa.float64()),  # how late the sample was taken against its schedule
            ("stage", pa.int32()),  # the load's stage then (1, 2, ...; null outside the load)
            ("stage_rate", pa.float64()),  # the rate the load offered then, requests/s
        ]
    ),
    "requests": pa.schema(
        [
            ("allocator", pa.string()),
            ("repeat", pa.int32()),
            ("endpoint", pa.string()),
            ("intended_s", pa.float64()),
            ("sent_s", pa.float64()),
            ("done_s", pa.float64()),
            ("status", pa.int32()),  # HTTP status, 0 for a transport error
            ("error", pa.string()),
            ("phase", pa.string()),  # warmup, load, idle (idle traffic: health probes)
            ("worker", pa.int32()),  # pid of the worker that answered a /churn (else null)
            ("live_bytes", pa.int64()),  # that worker's live payload after the call (else null)
            ("stage", pa.int32()),  # the load's stage it came due in (1, 2, ...; else null)
            ("stage_rate", pa.float64()),  # the rate the load offered when it came due
        ]
    ),
    "control": pa.schema(
        [
            ("allocator", pa.string()),
            ("repeat", pa.int32()),
            ("threads", pa.int32()),
            ("operations", pa.int64()),
            ("seconds", pa.float64()),
            ("allocs_per_s", pa.float64()),
            ("peak_anon_bytes", pa.int64()),
            ("settled_anon_bytes", pa.int64()),
            ("live_bytes", pa.int64()),
            ("checksum", pa.string()),
            ("share", pa.string()),  # shard or global, as the program echoed it
            ("idle_s", pa.float64()),  # rest after the churn the program was given
            ("settle_window_s", pa.float64()),  # window of the settled median actually used
            ("cpus", pa.int32()),  # CPUs the program could run on (its affinity mask)
            ("oversubscribed", pa.bool_()),  # threads > cpus: threads took turns
            ("cpu_user_s", pa.float64()),  # churn phase, all threads
            ("cpu_sys_s", pa.float64()),  # churn phase, all threads
            ("minor_faults", pa.int64()),  # churn phase
            ("major_faults", pa.int64()),  # churn phase
            ("allocs_per_cpu_s", pa.float64()),  # operations / (cpu_user_s + cpu_sys_s)
            ("run_cpu_user_s", pa.float64()),  # whole run, start to result
            ("run_cpu_sys_s", pa.float64()),
            ("run_minor_faults", pa.int64()),
            ("run_major_faults", pa.int64()),
        ]
    ),
    "summary": pa.schema(
        [
            ("experiment", pa.string()),
            ("allocator", pa.string()),
            ("repeat", pa.int32()),
            ("peak_anon_bytes", pa.int64()),
            ("settled_anon_bytes", pa.int64()),
            ("reclaimed_anon_bytes", pa.int64()),  # after the forced reclaim (service)
            ("p50_ms", pa.float64()),
            ("p95_ms", pa.float64()),
            ("p99_ms", pa.float64()),
            ("achieved_rps", pa.float64()),
            ("requests", pa.int64()),
            ("errors", pa.int64()),
            ("allocs_per_s", pa.float64()),
            ("cpu_pressure_pct", pa.float64()),  # /proc/pressure/cpu "some", % of the run
            ("foreign_cpu_pct", pa.float64()),  # CPU used by processes not ours, % of machine
            ("send_late_p99_ms", pa.float64()),
            ("disturbed", pa.bool_()),
            ("disturbed_reason", pa.string()),
            # service: the freshly started service and the live payload it held
            ("ready_anon_bytes", pa.int64()),  # anon memory once every worker was ready
            ("ready_live_bytes", pa.int64()),  # live payload of all workers at ready
            ("load_end_live_bytes", pa.int64()),  # live payload at the end of load (/stats)
            ("idle_end_live_bytes", pa.int64()),  # live payload at the end of idle (/stats)
            ("overhead_peak", pa.float64()),  # (peak - ready anon) / (load-end - ready live)
            ("overhead_settled", pa.float64()),  # (settled - ready anon) / (idle-end - ready live)
            ("given_back_share", pa.float64()),  # (peak - settled) / peak
            # service: how memory settled over the idle (bench.measure.runstats.settling):
            # the idle as run (it may end once memory has settled), the seconds from its start
            # until memory stayed within the settle band of the settled value, and whether it
            # was still falling across the settle window when idle ended
            ("idle_run_s", pa.float64()),
            ("settle_time_s", pa.float64()),
            ("still_falling", pa.bool_()),
            # service in a memory cgroup: the kernel's high-water mark of the group's charge
            # during load (anon + page cache + kernel; v1 memory.max_usage_in_bytes or v2
            # memory.peak, restarted as load began where `load_peak_source` names the file,
            # else counted from the group's creation) and the charge as load ended
            ("load_peak_charged_bytes", pa.int64()),
            ("load_end_charged_bytes", pa.int64()),
            ("load_peak_source", pa.string()),
            # service: the app could not keep up with the asked rate (bench.measure.runstats
            # .saturation); such a repeat is never ranked, and the run exits 5
            ("saturated", pa.bool_()),
            ("allocs_per_cpu_s", pa.float64()),  # control: per CPU-second of the churn
            # service under the spec's memory limit (null without one; peak_charged_bytes is
            # recorded wherever a memory cgroup held the service)
            ("memory_limit_bytes", pa.int64()),  # the limit on the service's cgroup
            ("oom_kills", pa.int64()),  # workers the limit killed (OOM kills)
            ("first_oom_s", pa.float64()),  # when the first was noticed, on the t_s clock
            ("limit_hits", pa.int64()),  # charges that met the limit (v2 max events, v1 failcnt)
            ("peak_charged_bytes", pa.int64()),  # highest charge of the cgroup (anon+cache+kernel)
            # method flags of the repeat ("; "-joined: failed requests, missing samples in a
            # window, oversubscribed control...), apart from machine disturbance
            ("flagged", pa.bool_()),
            ("flags", pa.string()),
            # service: workers recycled after their limit of requests during the repeat (0
            # without recycling), and the load requests that hit a restarting worker
            ("restarts", pa.int64()),
            ("requests_during_restart", pa.int64()),
            # service: the program's own live heap beside its anonymous memory (leak or
            # retention?), summed over the workers at ready, end of load and end of idle: the
            # bytes malloc counts as in use (null where the allocator offers no count, or a
            # worker did not answer) and CPython's allocated blocks
            ("heap_source", pa.string()),  # which count: mallinfo2, jemalloc stats.allocated...
            ("ready_heap_bytes", pa.int64()),
            ("load_end_heap_bytes", pa.int64()),
            ("idle_end_heap_bytes", pa.int64()),
            ("ready_py_blocks", pa.int64()),
            ("load_end_py_blocks", pa.int64()),
            ("idle_end_py_blocks", pa.int64()),
            ("load_end_anon_bytes", pa.int64()),  # the last sample of the load
        ]
    ),
    # one row per recycled worker of the service (service.max_requests), with its replacement
    "restarts": pa.schema(
        [
            ("allocator", pa.string()),
            ("repeat", pa.int32()),
            ("t_s", pa.float64()),  # when the old worker stopped accepting, at its limit
            ("phase", pa.string()),  # the phase then
            ("old_pid", pa.int32()),
            ("new_pid", pa.int32()),
            ("requests", pa.int64()),  # requests the old worker served
            ("limit", pa.int64()),  # the limit it had drawn (max_requests + jitter)
            ("replaced_s", pa.float64()),  # when the supervisor started the replacement
            ("ready_s", pa.float64()),  # when the replacement served (null: not before the end)
            ("requests_hit", pa.int64()),  # load requests that hit this restart
        ]
    ),
    # where each worker's anonymous memory sits, every service.retention_every_s from ready to
    # the end of idle (bench.measure.retention): one row per component of each reading, plus
    # `anon` itself (the components and `unaccounted` add up to it)
    "retention": pa.schema(
        [
            ("experiment", pa.string()),  # service (one row set per worker) or control
            ("allocator", pa.string()),
            ("repeat", pa.int64()),
            ("worker", pa.string()),  # the worker's pid; "control" for the C++ control
            ("moment", pa.string()),  # ready (before the load), load or idle
            ("mark", pa.string()),  # ready, peak, load_end, settled; null for other readings
            ("t_s", pa.float64()),  # on the repeat's clock, as memory's t_s
            ("idle_t_s", pa.float64()),  # seconds into the idle (null outside it)
            ("component", pa.string()),  # anon, live, free, timer, metadata, lazy, ...
            ("bytes", pa.int64()),  # null: the component is absent (why: in `source`)
            ("source", pa.string()),  # the statistic it came from, or "absent: why"
        ]
    ),
    # what each stage of the load did (bench.experiments.loadstages): one row per stage and
    # service repeat; a load given as one rate is one stage
    "stages": pa.schema(
        [
            ("allocator", pa.string()),
            ("repeat", pa.int32()),
            ("stage", pa.int32()),  # 1, 2, ... in the order they ran
            ("name", pa.string()),  # the spec's name for it, else stage1, stage2, ...
            ("rate", pa.float64()),  # the rate it held after its ramp, requests/s
            ("ramp_s", pa.float64()),  # seconds of linear change from the rate before
            ("start_s", pa.float64()),  # on the repeat's clock, as memory's t_s
            ("end_s", pa.float64()),
            ("start_anon_bytes", pa.int64()),  # the last sample at or before its start
            ("end_anon_bytes", pa.int64()),  # the last sample within it
            ("peak_anon_bytes", pa.int64()),  # the highest sample within it
            ("requests", pa.int64()),  # requests that came due in it
            ("errors", pa.int64()),  # of those, failed (charged at the timeout)
            ("achieved_rps", pa.float64()),  # answered OK per second of the stage
            ("p50_ms", pa.float64()),  # from the intended send time, failures charged
            ("p99_ms", pa.float64()),
        ]
    ),
}

#: The column the run folder adds to every table: the host (its hostname) whose cell measured
#: the row, so a run spread over several hosts (bench.cluster) says where each number came
#: from. The producers of rows (the experiments, the load generator) never set it; the writer
#: adds it (null where a row has none), and a file written before it existed reads as null.
HOST_COLUMN = "host"

#: Every table of the data contract, in the order a run writes them.
TABLES: tuple[str, ...] = tuple(SCHEMAS)

#: Tables a run writes only when it recorded rows of them (a run without one still reads, as
#: no rows): retention is off in a spec with `service.retention_every_s: 0`, and runs made
#: before either existed have none.
WRITTEN_WHEN_FILLED: frozenset[str] = frozenset({"retention", "stages"})

#: The schema of each table as stored in a run folder: the producers' columns, then the host.
STORED_SCHEMAS: dict[str, pa.Schema] = {
    name: schema.append(pa.field(HOST_COLUMN, pa.string())) for name, schema in SCHEMAS.items()
}

#: Columns added within the current format version: a file written before them still reads,
#: the column absent (null to every reader), since nothing it holds changed meaning.
ADDED_COLUMNS: dict[str, frozenset[str]] = {
    "summary": frozenset(
        {
            "memory_limit_bytes",
            "oom_kills",
            "first_oom_s",
            "limit_hits",
            "peak_charged_bytes",
            "restarts",
            "requests_during_restart",
            "heap_source",
            "ready_heap_bytes",
            "load_end_heap_bytes",
            "idle_end_heap_bytes",
            "ready_py_blocks",
            "load_end_py_blocks",
            "idle_end_py_blocks",
            "load_end_anon_bytes",
            "idle_run_s",
            "settle_time_s",
            "still_falling",
            "load_peak_charged_bytes",
            "load_end_charged_bytes",
            "load_peak_source",
            "saturated",
            HOST_COLUMN,
        }
    ),
    "memory": frozenset({HOST_COLUMN, "stage", "stage_rate"}),
    "requests": frozenset({HOST_COLUMN, "stage", "stage_rate"}),
    "control": frozenset({HOST_COLUMN}),
    "restarts": frozenset({HOST_COLUMN}),
    "retention": frozenset(),
    "stages": frozenset(),
}


class TableError(UserError):
    """A table file that is missing, unreadable, of another format version or of another kind."""


def to_table(name: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows (dicts) to a table of the named stored schema; absent columns become null."""
    schema = STORED_SCHEMAS[name]
    rows = list(rows)
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.Table.from_pydict(columns, schema=schema)


def _with_metadata(name: str, table: pa.Table) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[b"allocstudy.table"] = name.encode()
    meta[b"allocstudy.format"] = FORMAT_VERSION.encode()
    return table.replace_schema_metadata(meta)


def _umask() -> int:
    """The process's umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file whole under a temporary name in the same folder, then rename it.

    The file gets the permissions of an ordinary new file (0666 less the umask), not the 0600
    of a temporary file: a run folder is meant to be published or shared as it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(path: Path, name: str, table: pa.Table) -> None:
    """Write an Arrow IPC (Feather v2) file atomically: readers never see half a file."""
    if name not in SCHEMAS:
        raise ValueError(f"unknown table {name!r}")
    if HOST_COLUMN not in table.column_names:  # a producer's table: the host is not known here
        table = table.append_column(HOST_COLUMN, pa.nulls(table.num_rows, pa.string()))
    table = _with_metadata(name, table.cast(STORED_SCHEMAS[name]))
    sink = pa.BufferOutputStream()
    feather.write_feather(table, sink, compression="zstd")
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (Arrow's may run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_table(path: Path, name: str) -> pa.Table:
    """Read a table a run wrote, checking its kind and format version.

    A truncated or damaged file is refused here, as a TableError that names it: the table is
    validated in full (offsets, lengths, UTF-8) before anything reads a value, because Arrow
    trusts the buffers it maps, and a damaged offset would otherwise crash the reader or read
    garbage.
    """
    try:
        table = feather.read_table(path, memory_map=False)
        table.validate(full=True)
        meta = table.schema.metadata or {}
        kind = meta.get(b"allocstudy.table", b"").decode("utf-8", "replace")
        version = meta.get(b"allocstudy.format", b"").decode("utf-8", "replace")
        columns = table.column_names
    except FileNotFoundError:
        raise TableError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException, ValueError, MemoryError) as exc:
        # ValueError covers the UnicodeDecodeError of a damaged column name
        raise TableError(
            f"{path}: not a readable Arrow file, truncated or damaged ({_reason(exc)})"
        ) from None
    if kind != name:
        raise TableError(f"{path}: holds table {kind or '(unnamed)'!r}, expected {name!r}")
    if version != FORMAT_VERSION:
        raise TableError(
            f"{path}: format version {version or '(none)'} is not the supported "
            f"{FORMAT_VERSION}; re-run the study with this version of allocstudy"
        )
    added = ADDED_COLUMNS.get(name, frozenset())
    stored = STORED_SCHEMAS[name]
    missing = [f.name for f in stored if f.name not in columns and f.name not in added]
    if missing:
        raise TableError(f"{path}: missing columns {', '.join(missing)}")
    for want in stored:
        if want.name not in columns:
            continue
        got = table.schema.field(want.name).type
        if got != want.type:
            raise TableError(f"{path}: column {want.name} holds {got}, expected {want.type}")
    return table


def table_rows(path: Path, name: str, *, required: bool = True) -> list[dict[str, Any]]:
    """The rows of a table file as dicts, the schema's columns only (read_table's checks).

    A table that is not `required` and has no file reads as no rows (a spec without the
    control writes an empty control table, an older run may have none).
    """
    if not required and not path.exists():
        return []
    table = read_table(path, name)
    keep = [f.name for f in STORED_SCHEMAS[name] if f.name in table.column_names]
    try:
        return table.select(keep).to_pylist()
    except (pa.ArrowException, ValueError) as exc:  # a value of a type the schema does not say
        raise TableError(f"{path}: unreadable values ({_reason(exc)})") from None
