"""The table reader refuses a damaged, foreign or mistyped file with a TableError naming it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pytest

from bench.results.tables import TableError, read_table, table_rows, to_table, write_table

REPO = Path(__file__).resolve().parents[2]


def _requests_file(path: Path) -> Path:
    rows = [
        {
            "allocator": "glibc",
            "repeat": 0,
            "endpoint": ("churn", "json", "xml")[i % 3],
            "intended_s": i * 0.01,
            "sent_s": i * 0.01,
            "done_s": i * 0.01 + 0.002,
            "status": 200,
            "error": None if i % 7 else "timeout",
            "phase": "load",
            "worker": 1000 + i % 4,
            "live_bytes": 1_000_000 + 4096 * i,
        }
        for i in range(2000)
    ]
    write_table(path, "requests", to_table("requests", rows))
    return path


def test_damaged_bytes_are_a_table_error_never_a_crash(tmp_path: Path) -> None:
    """Arrow trusts a file's offsets: without full validation a flipped byte crashed the reader
    (a segfault, or a SystemError from a negative string length). A fresh process, so a crash
    fails this test instead of ending the session."""
    good = _requests_file(tmp_path / "requests.arrow")
    script = textwrap.dedent(
        f"""
        import random
        from pathlib import Path
        from bench.results.tables import TableError, table_rows
        good = Path({str(good)!r}).read_bytes()
        bad = Path({str(tmp_path / "bad.arrow")!r})
        rnd = random.Random(1)
        for i in range(300):
            data = bytearray(good)
            if i % 3:
                for _ in range(rnd.randint(1, 20)):
                    data[rnd.randrange(len(data))] = rnd.randrange(256)
            else:
                data = data[: rnd.randrange(len(data))]
            bad.write_bytes(bytes(data))
            try:
                table_rows(bad, "requests")
            except TableError as exc:
                assert str(exc).startswith(str(bad) + ": "), exc
                assert "\\n" not in str(exc), exc
        print("done")
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]


def test_a_column_of_another_type_is_refused(tmp_path: Path) -> None:
    path = _requests_file(tmp_path / "requests.arrow")
    table = feather.read_table(path)
    column = table.schema.get_field_index("status")
    table = table.set_column(column, "status", table["status"].cast(pa.string()))
    feather.write_feather(table, path)  # the schema metadata is kept
    with pytest.raises(TableError, match="column status holds string, expected int32"):
        read_table(path, "requests")


def test_a_table_without_metadata_is_not_taken_for_one_of_ours(tmp_path: Path) -> None:
    path = tmp_path / "requests.arrow"
    feather.write_feather(pa.table({"x": [1, 2]}), path)
    with pytest.raises(TableError, match="holds table '\\(unnamed\\)', expected 'requests'"):
        table_rows(path, "requests")


def test_a_summary_written_before_the_restart_columns_reads_them_as_null(tmp_path: Path) -> None:
    """Columns added later (ADDED_COLUMNS) are optional in files of the same format version."""
    path = tmp_path / "summary.arrow"
    row = {"experiment": "service", "allocator": "glibc", "repeat": 0, "peak_anon_bytes": 5}
    table = to_table("summary", [row])
    write_table(path, "summary", table)
    older = feather.read_table(path).drop_columns(["restarts", "requests_during_restart"])
    feather.write_feather(older, path)  # the schema metadata (name, version) is kept
    (read,) = table_rows(path, "summary")
    assert read["peak_anon_bytes"] == 5
    assert read.get("restarts") is None and read.get("requests_during_restart") is None
    other = feather.read_table(path).drop_columns(["flags"])  # not a later column: refused
    feather.write_feather(other, path)
    with pytest.raises(TableError, match="missing columns flags"):
        read_table(path, "summary")
