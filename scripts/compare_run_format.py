"""Compare two run folders' data format: manifest key sets (per record) and table schemas.

Usage: .venv/bin/python scripts/compare_run_format.py RUN_BEFORE RUN_AFTER
Prints every difference; exits 1 when there is one. Values are not compared: two runs of one
spec measure different numbers, but must write the same keys and the same columns.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pyarrow.ipc as ipc


def _keys(value: Any, where: str, out: set[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if where.endswith(("spec", "env", "hosts", "version_by_host", "logs")):
                out.add(f"{where}.*")
                continue
            out.add(f"{where}.{k}")
            _keys(v, f"{where}.{k}", out)
    elif isinstance(value, list):
        for item in value:
            _keys(item, f"{where}[]", out)


def manifest_keys(run: Path) -> set[str]:
    found: set[str] = set()
    _keys(json.loads((run / "manifest.json").read_text()), "", found)
    return found


def schemas(run: Path) -> dict[str, str]:
    found = {}
    for table in sorted(run.glob("*.arrow")):
        with ipc.open_file(table) as reader:
            found[table.name] = str(reader.schema)
    return found


def main(before: Path, after: Path) -> int:
    a, b = manifest_keys(before), manifest_keys(after)
    bad = 0
    for key in sorted(a - b):
        print(f"manifest: only before: {key}")
        bad += 1
    for key in sorted(b - a):
        print(f"manifest: only after: {key}")
        bad += 1
    sa, sb = schemas(before), schemas(after)
    for name in sorted(set(sa) | set(sb)):
        if sa.get(name) != sb.get(name):
            print(f"table {name}: schema differs")
            bad += 1
    print("same format" if not bad else f"{bad} difference(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
