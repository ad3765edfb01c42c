"""The study on a Dask cluster: every cell a task on a benchmark host of its own.

The pipeline mirrors the local runner's (bench.experiments.runner): open a run folder (or the
one to resume), plan the cells in the same rotated rounds, then submit them all at once, in
that order of priority, each asking for one `bench_host` (one per host: no host runs two
cells at once) plus the resources of its host kind. Each host runs its cell as a local run
does (bench.cluster.task, bench.cluster.cellproc) and sends back its rows and manifest entry
(bench.cluster.wire); this client merges them into the one run folder as they arrive
(bench.experiments.cell.merge_cell, the local runner's fold) and saves after each, so an
interrupted run keeps everything that finished.

Failures: a cell that fails (its experiment failed, its host could not have the allocator,
its host died, its task raised) is submitted once more, to another host offering the same
kind when there is one; a second failure fails (or skips) its allocator with the reason, and
the allocator's other cells are cancelled; every other allocator goes on. Every attempt is a
line of the manifest's `cells`, with its host and wall-clock start and end. Ctrl-C (SIGTERM,
SIGHUP) sets the run's stop event, which each running cell's task turns into a SIGTERM of
its cell; the client waits for them to stop, cancels the rest, marks the run incomplete and
closes the cluster. `--resume` of a cluster run submits only the cells not yet done.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench.allocators.registry import resolve_spec
from bench.cluster.engine import connect, hosts_offering, wait_for_hosts
from bench.cluster.hosts import kind_label, parse_requirement, resources_for
from bench.cluster.task import run_cell_task
from bench.cluster.wire import Delivery, WireError, decode
from bench.errors import EXIT_FAILED, EXIT_OK
from bench.experiments.cell import Cell, CellResult, cell_record, merge_cell, wall_clock
from bench.experiments.runner import (
    FINISHED,
    allocator_record,
    base_manifest,
    method_record,
    only_allocators,
    reclaim_support,
    resumable_run,
    round_cells,
    round_count,
    round_order,
    sigterm_as_interrupt,
    spec_twins,
)
from bench.results.manifest import read_manifest
from bench.results.rundir import new_run_dir, read_rows, save_run, set_latest, writing
from bench.results.tables import atomic_write_bytes
from bench.spec import Spec

__all__ = ["ATTEMPTS", "STOP_WAIT_S", "host_kinds", "plan_cells", "run_cluster_study"]

#: The keys of a local run's `host` (bench.measure.machine.host_info): a cluster run's headline
#: host, the one that ran most cells, is recorded with these, so runs compare key for key.
HOST_KEYS = (
    "hostname", "cpu_model", "cores", "usable_cores", "memory_bytes", "kernel", "glibc",
    "python", "machine",
)  # fmt: skip

#: How many times a cell is tried: once, and once more elsewhere.
ATTEMPTS = 2
#: How long an interrupted run waits for its running cells to stop and clean up.
STOP_WAIT_S = 90.0


def host_kinds(spec: Spec, require: list[str]) -> list[dict[str, str]]:
    """The kinds of host every cell runs on: the spec's `hosts:` (one entry each), or one kind
    of any host; every `--require KEY=VALUE` is added to each."""
    extra = dict(parse_requirement(text) for text in require)
    kinds = [dict(kind) for kind in spec.hosts] or [{}]
    return [{**kind, **extra} for kind in kinds]


def plan_cells(
    spec: Spec,
    names: list[str],
    *,
    kinds: int,
    skip_service: bool,
    skip_control: bool,
) -> tuple[list[Cell], list[dict[str, Any]]]:
    """Every cell in submission order, and the rounds as the manifest records them: round r
    holds repeat r of every allocator in the order of runner.round_order, as a local run's does."""
    cells: list[Cell] = []
    order: list[dict[str, Any]] = []
    for r in range(round_count(spec, skip_service=skip_service, skip_control=skip_control)):
        names_r = round_order(names, r, twins=spec_twins(spec), seed=spec.service.churn.seed)
        order.append({"round": r, "allocators": names_r})
        for kind in range(kinds):
            for name in names_r:
                for cell in round_cells(
                    spec, name, r, skip_service=skip_service, skip_control=skip_control
                ):
                    cells.append(replace(cell, kind=kind))
    return cells, order


@dataclass
class _Attempt:
    cell: Cell
    attempt: int


def _key(cell: Cell) -> tuple[str, str, int, int]:
    return (cell.allocator, cell.experiment, cell.repeat, cell.kind)


def _say(text: str) -> None:
    print(f"allocstudy: {text}", file=sys.stderr, flush=True)


class _Session:
    """One cluster run's state: the manifest, rows, futures in flight, and what is done."""

    def __init__(
        self,
        spec: Spec,
        client: Any,
        run_dir: Path,
        manifest: dict[str, Any],
        rows: dict[str, list[dict[str, Any]]],
        kinds: list[dict[str, str]],
        *,
        wait: bool,
        address: str,
    ) -> None:
        self.spec, self.client, self.run_dir = spec, client, run_dir
        self.manifest, self.rows, self.kinds = manifest, rows, kinds
        self.records = {a["name"]: a for a in manifest["allocators"]}
        self.wait, self.address = wait, address
        self.futures: dict[Any, _Attempt] = {}
        self.remaining: dict[str, set[tuple[str, str, int, int]]] = {}
        self.exit_code = EXIT_OK
        self.submitted = 0
        self.stopping = False  # set by stop(): cells that come back interrupted are expected
        run_id = run_dir.name
        self.topic = f"allocstudy-{run_id}"
        self.stop_name = f"allocstudy-stop-{run_id}"

    def save(self) -> None:
        save_run(self.run_dir, self.rows, self.manifest)

    def request(self, cell: Cell) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(mode="json"),
            "spec_hash": self.spec.spec_hash,
            "cell": cell.as_record(),
            "run_id": self.run_dir.name,
            "wait": self.wait,
            "topic": self.topic,
            "stop_event": self.stop_name,
        }

    def submit(self, cell: Cell, attempt: int, *, avoid: str | None = None) -> Any:
        """Submit one cell; a retry goes to another host of its kind when there is one."""
        wanted = resources_for(self.kinds[cell.kind])
        others = [w for w in hosts_offering(self.client, wanted) if w != avoid]
        self.submitted += 1
        future = self.client.submit(
            run_cell_task,
            self.request(cell),
            key=f"allocstudy-{self.run_dir.name}-{cell.key.replace('/', '-')}-a{attempt}",
            resources=wanted,
            workers=others if avoid and others else None,
            allow_other_workers=False,
            pure=False,
            priority=-self.submitted if attempt == 1 else 1_000_000,
        )
        self.futures[future] = _Attempt(cell, attempt)
        return future

    def collect(self, future: Any) -> tuple[Delivery | None, str | None, str | None]:
        """A finished future's delivery, or the reason it has none, and the worker it ran on.
        The service workers' logs the payload carries are attached to the delivery."""
        try:
            payload = future.result()
        except Exception as exc:
            worker = getattr(getattr(exc, "last_worker", None), "address", None)
            if type(exc).__name__ == "KilledWorker":
                return None, f"the host running it died ({worker or 'unknown worker'})", worker
            return None, f"{type(exc).__name__}: {exc}", worker
        worker = payload.get("worker") if isinstance(payload, dict) else None
        try:
            delivery = decode(payload)
        except WireError as exc:
            return None, str(exc), worker
        delivery.logs_files = dict(payload.get("logs") or {})
        return delivery, None, worker

    def on_host(self, delivery: Delivery) -> None:
        """Record the host a delivery came from: its fingerprint, kind and confounds."""
        host = delivery.result.host
        hosts = self.manifest.setdefault("hosts", {})
        entry = hosts.setdefault(host, {"cells": 0})
        entry["cells"] += 1
        if delivery.fingerprint:
            entry["fingerprint"] = delivery.fingerprint
            entry["kind"] = kind_label(delivery.fingerprint)
        if delivery.confounds:
            entry["confounds"] = delivery.confounds
            if not self.manifest.get("confounds"):  # the run's headline: its first host's
                self.manifest["confounds"] = delivery.confounds
                mode = delivery.confounds.get("cgroup_mode")
                support = reclaim_support(_Mode(mode) if mode and mode != "none" else None)
                self.manifest["method"] = method_record(self.spec, **support)
        busiest = max(hosts.items(), key=lambda kv: kv[1]["cells"])
        if "fingerprint" in busiest[1]:  # the headline host, in a local run's terms
            fp = busiest[1]["fingerprint"]
            self.manifest["host"] = {k: fp[k] for k in HOST_KEYS if k in fp}
        self.manifest["host_kinds"] = sorted(
            {h["kind"] for h in hosts.values() if "kind" in h}
        )  # more than one: the article shows them apart

    def settle(self, future: Any) -> None:
        """Take one finished future into the run: merge it, retry it, or fail its allocator."""
        att = self.futures.pop(future)
        cell, record = att.cell, self.records[att.cell.allocator]
        if record["status"] in FINISHED:
            return  # its allocator failed or was skipped meanwhile: nothing more is taken
        delivery, why, worker = self.collect(future)
        if delivery is not None:
            result = delivery.result
            self.on_host(delivery)
            self.keep_logs(cell, delivery.logs_files)
        else:
            now = time.time()
            result = CellResult(
                cell=cell, status="failed", host=worker or "unknown", started=now,
                finished=now, reason=why,
            )  # fmt: skip
        if result.status == "interrupted" and self.stopping:  # our Ctrl-C: recorded, not merged
            line = cell_record(result, attempt=att.attempt, worker=worker)
            self.manifest.setdefault("cells", []).append(line)
            return
        if result.status == "interrupted":  # stopped on its host by someone else: a failure
            result.status = "failed"
            result.reason = f"stopped on {result.host} by a signal while it ran"
        if result.page_cache_dropped is not None:
            self.manifest.setdefault("confounds", {})["page_cache_dropped"] = (
                result.page_cache_dropped
            )
        line = cell_record(result, attempt=att.attempt, worker=worker)
        self.manifest.setdefault("cells", []).append(line)
        took = result.finished - result.started
        if result.status != "ok" and att.attempt < ATTEMPTS:
            wanted = resources_for(self.kinds[cell.kind])
            elsewhere = any(w != worker for w in hosts_offering(self.client, wanted))
            where = "on another host" if elsewhere else "(no other host offers its kind)"
            _say(
                f"{cell.key}: {result.status} on {result.host} ({result.reason}); "
                f"trying it once more {where}"
            )
            self.submit(cell, att.attempt + 1, avoid=worker)
            return
        if record["started"] is None:
            record["started"] = wall_clock(result.started)
        if record["status"] == "pending":
            record["status"] = "running"
        merge_cell(record, self.rows, result)
        if result.status == "ok":
            _say(f"{cell.key}: ok on {result.host} ({took:.0f} s)")
            self.remaining[cell.allocator].discard(_key(cell))
            if not self.remaining[cell.allocator]:
                record.update(status="ok", finished=wall_clock(time.time()))
                _say(f"{cell.allocator}: ok")
        else:
            _say(f"{cell.allocator}: {result.status}: {result.reason}")
            if result.status == "failed":
                self.exit_code = EXIT_FAILED
            self.cancel_allocator(cell.allocator)
        self.save()

    def keep_logs(self, cell: Cell, logs: Mapping[str, bytes]) -> None:
        """The service workers' own output, where a local run keeps it: logs/<alloc>-r<n>/."""
        folder = f"{cell.allocator}-r{cell.repeat}" + (f"-k{cell.kind}" if cell.kind else "")
        with writing(self.run_dir):
            for name, data in logs.items():
                atomic_write_bytes(self.run_dir / "logs" / folder / name, data)

    def cancel_allocator(self, name: str) -> None:
        """Cancel an allocator's cells still queued (its run has ended)."""
        for future, att in list(self.futures.items()):
            if att.cell.allocator == name:
                future.cancel()
                del self.futures[future]

    def stop(self) -> None:
        """Ctrl-C: stop the running cells (they clean up on their hosts), cancel the rest."""
        from distributed import Event, wait

        self.stopping = True
        try:
            Event(self.stop_name, client=self.client).set()
            running = {key for keys in self.client.processing().values() for key in keys}
        except Exception:
            running = set()
        waiting = [f for f in self.futures if f.key in running]
        for future in [f for f in self.futures if f.key not in running]:
            future.cancel()
        if waiting:
            _say(f"stopping {len(waiting)} running cell(s)")
            try:
                wait(waiting, timeout=STOP_WAIT_S)
            except Exception:
                pass
        for future in waiting:
            if future.done():
                self.settle(future)


@dataclass(frozen=True)
class _Mode:
    """The one attribute of a cgroup support record that reclaim_support reads."""

    mode: str


def _print_line(event: Any) -> None:
    """A line a cell printed on its host, shown here as `host: line`."""
    _, msg = event
    if isinstance(msg, Mapping):
        print(f"{msg.get('host')}: {msg.get('line')}", file=sys.stderr, flush=True)


def run_cluster_study(
    spec: Spec,
    *,
    spec_path: Path,
    out: Path,
    address: str,
    only: list[str] | None = None,
    resume: bool = False,
    skip_control: bool = False,
    skip_service: bool = False,
    require: list[str] | None = None,
    wait: bool = False,
) -> tuple[Path, int]:
    """Run the study's cells on the cluster at `address` (`local`: a LocalCluster here);
    the run folder and the exit code, as bench.experiments.runner.run_study returns them."""
    kinds = host_kinds(spec, require or [])
    # names and descriptions only: each host resolves its own
    allocs = only_allocators(resolve_spec(spec, build=False), spec, only)
    with connect(address) as client:
        for kind in kinds:
            wait_for_hosts(client, resources_for(kind), address)
        run_dir, manifest, rows, done_cells = _open_run(spec, spec_path, out, resume=resume)
        records = {a["name"]: a for a in manifest["allocators"]}
        for alloc in allocs:
            if alloc.name not in records or records[alloc.name]["status"] not in FINISHED:
                if alloc.name not in records or not done_cells.get(alloc.name):
                    records[alloc.name] = _cluster_record(alloc)
                else:
                    records[alloc.name]["status"] = "running"
                    records[alloc.name]["reason"] = None
        names = [a.name for a in allocs]
        manifest["allocators"] = [records[n] for n in names] + [
            r for n, r in records.items() if n not in names
        ]
        manifest["cluster"] = {
            "address": address,
            "scheduler": client.scheduler.address,
            "workers": len(client.scheduler_info(n_workers=-1)["workers"]),
            "host_kinds": kinds,
            "attempts": ATTEMPTS,
        }
        todo = [n for n in names if records[n]["status"] not in FINISHED]
        cells, order = plan_cells(
            spec, todo, kinds=len(kinds), skip_service=skip_service, skip_control=skip_control
        )
        manifest["order"] = order
        session = _Session(spec, client, run_dir, manifest, rows, kinds, wait=wait, address=address)
        for name in todo:
            session.remaining[name] = {
                _key(c) for c in cells if c.allocator == name
            } - done_cells.get(name, set())
        for name in names:
            if name not in todo:
                _say(f"{name}: kept from the interrupted run ({records[name]['status']})")
                if records[name]["status"] == "failed":  # still the run's result: exit 3
                    session.exit_code = EXIT_FAILED
        session.save()
        try:
            with sigterm_as_interrupt():
                client.subscribe_topic(session.topic, _print_line)
                fresh = [c for c in cells if _key(c) in session.remaining[c.allocator]]
                hosts = len(hosts_offering(client, resources_for({})))
                _say(f"{len(fresh)} cells on {hosts} host(s) of {address}")
                for name in todo:
                    if not session.remaining[name]:  # every cell kept from before
                        records[name].update(status="ok", finished=wall_clock(time.time()))
                for cell in fresh:
                    session.submit(cell, 1)
                _drain(session)
        except KeyboardInterrupt:
            with _signals_held():  # a second signal must not cut the stop short
                session.stop()
                for rec in manifest["allocators"]:
                    if rec["status"] in ("pending", "running"):
                        rec["status"] = "incomplete"
                        rec["reason"] = "interrupted"
                manifest["status"] = "incomplete"
                manifest["finished"] = wall_clock(time.time())
                session.save()
            raise
    manifest["status"] = "complete"
    manifest["finished"] = wall_clock(time.time())
    session.save()
    set_latest(run_dir)
    return run_dir, session.exit_code


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP ignored while an interrupted run stops its cells and saves
    (at most STOP_WAIT_S): a second Ctrl-C, or a supervisor signalling the whole process group
    as well as the run, would otherwise leave the run folder saying it still runs."""
    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, signal.SIG_IGN) for s in wanted}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def _drain(session: _Session) -> None:
    """Take futures as they finish until none is in flight (retries join as they go)."""
    from distributed import wait

    while session.futures:
        done = wait(list(session.futures), return_when="FIRST_COMPLETED").done
        for future in done:
            if future in session.futures:
                session.settle(future)


def _cluster_record(alloc: Any) -> dict[str, Any]:
    """An allocator's manifest record before any host has resolved it: what the spec says
    of it; the library, its checksum and version are the hosts' (bench.experiments.cell)."""
    record = allocator_record(alloc)
    record.update(library=None, expected_library=None, sha256=None, version=None, fix=None)
    return record


def _open_run(
    spec: Spec, spec_path: Path, out: Path, *, resume: bool
) -> tuple[Path, dict[str, Any], dict[str, list[dict[str, Any]]], dict[str, set[Any]]]:
    """The run folder, its manifest and rows, and the cells done in it, per allocator.

    A resumed cluster run keeps every cell that finished ok (its rows and record are whole:
    a cluster run merges nothing of a cell that did not finish); a resumed local run keeps
    only its finished allocators, as the local runner does.
    """
    run_dir = resumable_run(spec, spec_path=spec_path, out=out) if resume else None
    if run_dir is None:
        run_dir = new_run_dir(out, spec.name)
        manifest = base_manifest(spec, spec_path, run_dir)
        manifest["host"] = {}
        rows: dict[str, list[dict[str, Any]]] = {
            "memory": [], "requests": [], "control": [], "summary": [], "restarts": [],
        }  # fmt: skip
        return run_dir, manifest, rows, {}
    manifest = read_manifest(run_dir)
    rows = read_rows(run_dir)
    manifest["status"] = "running"
    finished = {a["name"] for a in manifest["allocators"] if a["status"] in FINISHED}
    done: dict[str, set[Any]] = {}
    if "cluster" in manifest:
        for line in manifest.get("cells", []):
            if line.get("status") == "ok" and line["allocator"] not in finished:
                done.setdefault(line["allocator"], set()).add(_key(Cell.from_record(line)))
    for name in {a["name"] for a in manifest["allocators"]} - finished - set(done):
        for table in rows:  # partial rows of an allocator measured again from the start
            rows[table] = [r for r in rows[table] if r.get("allocator") != name]
    return run_dir, manifest, rows, done
