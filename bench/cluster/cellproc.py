"""One cell on a benchmark host, in a fresh process: `python -m bench.cluster.cellproc REQ OUT`.

The Dask task (bench.cluster.task) starts this process for every cell, so that each cell runs
as a local run's repeat does: in its own interpreter's main thread (signal handlers work, so
SIGTERM, SIGINT and SIGHUP unwind through every clean-up), holding this host's run lock (two
measurements on one host measure each other, whoever started the other), after putting back
what a killed run left changed (the journal), with THP held off while it measures, the
allocator verified on this host before its first cell here, and the same `run_cell` as a local
run. It reads the request (JSON) from REQ and writes its payload (bench.cluster.wire) into the
folder OUT; exit 0 with a payload whatever the cell's status, 130 when stopped (its payload
then says `interrupted` and carries no rows).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench.allocators import timers
from bench.allocators.registry import resolve_for_spec
from bench.allocators.verification import verify
from bench.cluster.hosts import fingerprint
from bench.cluster.wire import encode
from bench.errors import EXIT_INTERRUPTED, EXIT_OK, UserError
from bench.experiments.cell import Cell, CellResult, host_name, run_cell
from bench.experiments.harness import core_plan
from bench.measure import journal, machine
from bench.measure.groups import cgroup_support
from bench.measure.runlock import machine_lock
from bench.progress import Progress
from bench.results.records import confound_record
from bench.run.signals import sigterm_as_interrupt
from bench.spec.loading import SpecError, spec_from_record
from service.process.childenv import die_with_parent

__all__ = ["main", "read_payload", "run_request", "write_payload"]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_request(
    request: dict[str, Any], log_dir: Path | None = None
) -> tuple[CellResult, dict[str, Any]]:
    """Run the cell a request names; its result and this host's confounds during it. The
    service's workers write their own output into `log_dir` (sent back with the payload)."""
    cell = Cell.from_record(request["cell"])
    started = time.time()

    def ended(status: Any, reason: str | None) -> CellResult:
        return CellResult(
            cell=cell, status=status, host=host_name(), started=started,
            finished=time.time(), reason=reason,
        )  # fmt: skip

    try:
        spec = spec_from_record(request["spec"])
    except SpecError as exc:  # its request file cannot be read on this host
        return ended("failed", f"{exc} (on {host_name()})"), {}
    if spec.spec_hash != request["spec_hash"]:
        return ended(
            "failed",
            f"the spec reads otherwise on {host_name()} (spec hash {spec.spec_hash[:12]}, "
            f"the client's {request['spec_hash'][:12]}): install the client's allocstudy here",
        ), {}
    try:
        with machine_lock(wait=bool(request.get("wait")), on_wait=_say):
            for line in journal.recover():  # what a killed run left changed, put back first
                _say(line)
            alloc = resolve_for_spec(spec, cell.allocator)
            if not alloc.available:
                return ended("skipped", f"{alloc.reason} (on {host_name()})"), {}
            cores = core_plan(spec.machine.pin_cores)
            cg = cgroup_support() if spec.machine.cgroup == "auto" else None
            with machine.thp_disabled(spec.machine.set_confounds) as thp:
                confounds = confound_record(spec, thp=thp, cg=cg, cores=cores)
                verified = None
                if request.get("verify"):
                    check = verify(alloc)
                    verified = {
                        "version": check.version,
                        "knobs": check.knobs,
                        "timers": timers.to_records(check.timers),
                        "library": str(alloc.library) if alloc.library else None,
                        "expected_library": alloc.expected_library(),
                        "sha256": alloc.sha256,
                    }
                    if not check.ok:
                        result = ended("failed", f"verification: {check.reason}")
                        result.verified = verified
                        return result, confounds
                with Progress(total=1, interactive=False) as progress:
                    progress.index = 1
                    result = run_cell(
                        spec, alloc, cell, cores=cores, progress=progress, log_dir=log_dir
                    )
                result.verified = verified
                confounds["cpu_pressure"]["avg10_end"] = getattr(
                    machine.cpu_pressure(), "avg10", None
                )
            return result, confounds  # confounds.thp now says whether THP was restored
    except UserError as exc:  # this host is busy with another run, its lock cannot be opened
        return ended("failed", str(exc)), {}


def write_payload(folder: Path, payload: dict[str, Any]) -> None:
    """The payload as files: meta.json, one Arrow IPC stream per table (and the workers' logs
    already in `logs/`, where the cell wrote them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in payload["tables"].items():
        (folder / f"{name}.arrows").write_bytes(data)
    (folder / "meta.json").write_bytes(payload["meta"])
    (folder / "format").write_text(payload["format"])  # last: its presence means complete


def read_payload(folder: Path) -> dict[str, Any] | None:
    """The payload a cell process wrote into `folder`, or None if it wrote none (whole)."""
    try:
        fmt = (folder / "format").read_text()
        meta = (folder / "meta.json").read_bytes()
        tables = {p.stem: p.read_bytes() for p in folder.glob("*.arrows")}
        logs = {
            str(p.relative_to(folder / "logs")): p.read_bytes()
            for p in sorted((folder / "logs").rglob("*"))
            if p.is_file()
        }
    except OSError:
        return None
    return {"format": fmt, "meta": meta, "tables": tables, "logs": logs}


def main(argv: list[str]) -> int:
    request_file, out = Path(argv[0]), Path(argv[1])
    began = time.time()
    parent = os.getppid()
    die_with_parent(signal.SIGTERM)  # a host's worker that dies takes its cell down, cleanly
    request = json.loads(request_file.read_text(encoding="utf-8"))
    code = EXIT_OK
    try:
        with sigterm_as_interrupt():
            result, confounds = run_request(request, log_dir=out / "logs")
    except KeyboardInterrupt:  # stopped: the client cancelled the run; nothing is kept
        cell = Cell.from_record(request["cell"])
        result = CellResult(
            cell=cell, status="interrupted", host=host_name(), started=began,
            finished=time.time(), reason="interrupted",
        )  # fmt: skip
        confounds = {}
        code = EXIT_INTERRUPTED
    for line in journal.recover():  # anything of this cell's a cut-short clean-up left
        _say(line)
    if os.getppid() != parent:  # the worker died: nobody will read the payload or tidy up
        shutil.rmtree(out.parent, ignore_errors=True)  # the task's folder, this cell's files
        return code
    write_payload(out, encode(result, fingerprint=fingerprint(), confounds=confounds))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
