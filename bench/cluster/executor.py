"""The study on a Dask cluster: the executor that runs every cell on a benchmark host.

The run's lifecycle and its driver are the local run's (bench.run.lifecycle, bench.run.driver):
this module is only where a cell runs. `DaskExecutor.submit` sends one cell as a task asking
for one `bench_host` (one per host: no host runs two cells at once) plus the resources of its
host kind, at the priority of its place in the plan; the host runs it as a local run does
(bench.cluster.task, bench.cluster.cellproc) and sends back its rows and manifest entry
(bench.cluster.wire). The driver waits on many submits at once (`parallel`).

Failures: a cell that fails (its experiment failed, its host could not have the allocator,
its host died, its task raised) is tried once more, on another host offering the same kind
when there is one; the failed attempt comes back in the result's `earlier`, a line of the
manifest's `cells` like every attempt. Ctrl-C sets the run's stop event, which each running
cell's task turns into a SIGTERM of its cell; `stop` waits for them, cancels the rest.
`--resume` of a cluster run submits only the cells not yet done (bench.run.lifecycle).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.allocators.registry import resolve_spec
from bench.cluster.engine import connect, hosts_offering, wait_for_hosts
from bench.cluster.hosts import kind_label, parse_requirement, resources_for
from bench.cluster.task import run_cell_task
from bench.cluster.wire import WireError, decode
from bench.experiments.cell import Cell, CellResult
from bench.results.manifest import AllocatorRecord
from bench.results.records import method_record, reclaim_support
from bench.results.rundir import writing
from bench.results.tables import atomic_write_bytes
from bench.run.driver import Outcome, drive
from bench.run.lifecycle import Run
from bench.run.local import only_allocators
from bench.run.rounds import Round, plan_rounds
from bench.run.signals import sigterm_as_interrupt
from bench.spec import Spec

__all__ = ["ATTEMPTS", "HOST_KEYS", "STOP_WAIT_S", "DaskExecutor", "host_kinds", "plan_cells"]

#: The keys of a local run's `host` (bench.measure.machine.host_info): a cluster run's headline
#: host, the one that ran most cells, is recorded with these, so runs compare key for key.
HOST_KEYS = (
    "hostname", "cpu_model", "cores", "usable_cores", "memory_bytes", "kernel", "glibc",
    "python", "machine",
)  # fmt: skip

#: The extras of a cell cancelled before it ran: nothing of it is recorded.
NOT_RUN = {"not_run": True}
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
    spec: Spec, names: list[str], *, kinds: int, skip_service: bool, skip_control: bool
) -> tuple[list[Cell], list[dict[str, Any]]]:
    """Every cell in submission order, and the rounds as the manifest records them
    (bench.run.rounds.plan_rounds, as a local run's)."""
    rounds = plan_rounds(
        spec, names, kinds=kinds, skip_service=skip_service, skip_control=skip_control
    )
    cells = [c for r in rounds for c in r.cells]
    return cells, [{"round": r.index, "allocators": r.allocators} for r in rounds]


def _say(text: str) -> None:
    print(f"allocstudy: {text}", file=sys.stderr, flush=True)


@dataclass
class DaskExecutor:
    """Cells as Dask tasks on the cluster's hosts; `settle_host` notes each delivery's host."""

    spec: Spec
    client: Any
    run: Run
    kinds: list[dict[str, str]]
    rounds: list[Round]
    wait: bool
    parallel: bool = True
    futures: dict[str, list[Any]] = field(default_factory=dict)  # allocator -> in flight
    stopping: bool = False  # set by stop(): cells that come back interrupted are expected
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancelled: set[str] = field(default_factory=set)

    @property
    def topic(self) -> str:
        return f"allocstudy-{self.run.folder.name}"

    @property
    def stop_name(self) -> str:
        return f"allocstudy-stop-{self.run.folder.name}"

    def begin(self, name: str, record: AllocatorRecord) -> str:
        """Each host verifies the allocator itself, with its first cell of it."""
        return record.status

    def say(self, text: str) -> None:
        _say(text)

    def next_allocator(self, name: str) -> None:
        """Only a run in turn counts its places."""

    def request(self, cell: Cell) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(mode="json"),
            "spec_hash": self.spec.spec_hash,
            "cell": cell.as_record(),
            "run_id": self.run.folder.name,
            "wait": self.wait,
            "topic": self.topic,
            "stop_event": self.stop_name,
        }

    def _priority(self, cell: Cell) -> int:
        plan = [c for r in self.rounds for c in r.cells]
        return -plan.index(cell) - 1 if cell in plan else 0

    def submit(self, cell: Cell) -> CellResult:
        """Run one cell on a host of its kind; once more elsewhere when it fails."""
        earlier: list[CellResult] = []
        avoid: str | None = None
        for attempt in range(1, ATTEMPTS + 1):
            result = self._attempt(cell, attempt, avoid)
            if result.status == "ok" or attempt == ATTEMPTS or self.stopping:
                break
            if result.extras.get("not_run"):
                break
            if cell.allocator in self._cancelled or result.status == "interrupted":
                break
            wanted = resources_for(self.kinds[cell.kind])
            elsewhere = any(w != result.worker for w in hosts_offering(self.client, wanted))
            where = "on another host" if elsewhere else "(no other host offers its kind)"
            _say(
                f"{cell.key}: {result.status} on {result.host} ({result.reason}); "
                f"trying it once more {where}"
            )
            earlier.append(result)
            avoid = result.worker
        result.earlier = earlier
        return result

    def _attempt(self, cell: Cell, attempt: int, avoid: str | None) -> CellResult:
        wanted = resources_for(self.kinds[cell.kind])
        others = [w for w in hosts_offering(self.client, wanted) if w != avoid]
        with self._lock:
            if cell.allocator in self._cancelled or self.stopping:
                now = time.time()
                return CellResult(cell=cell, status="interrupted", host="none", started=now,
                                  finished=now, extras=NOT_RUN)  # fmt: skip
            future = self.client.submit(
                run_cell_task,
                self.request(cell),
                key=f"allocstudy-{self.run.folder.name}-{cell.key.replace('/', '-')}-a{attempt}",
                resources=wanted,
                workers=others if avoid and others else None,
                allow_other_workers=False,
                pure=False,
                priority=self._priority(cell) if attempt == 1 else 1_000_000,
            )
            self.futures.setdefault(cell.allocator, []).append(future)
        result = self._collect(cell, future)
        if result.extras.get("not_run"):
            return result
        result.attempt = attempt
        took = result.finished - result.started
        if result.status == "interrupted" and not self.stopping:  # stopped by someone else
            result.status = "failed"
            result.reason = f"stopped on {result.host} by a signal while it ran"
        elif result.status == "ok":
            _say(f"{cell.key}: ok on {result.host} ({took:.0f} s)")
        return result

    def _collect(self, cell: Cell, future: Any) -> CellResult:
        """A finished future's result, or a failed one saying why it has none."""
        worker: str | None = None
        try:
            payload = future.result()
        except Exception as exc:
            worker = getattr(getattr(exc, "last_worker", None), "address", None)
            if type(exc).__name__ == "CancelledError":  # its allocator or the run ended
                now = time.time()
                return CellResult(cell=cell, status="interrupted", host="none", started=now,
                                  finished=now, extras=NOT_RUN)  # fmt: skip
            if type(exc).__name__ == "KilledWorker":
                why, status = f"the host running it died ({worker or 'unknown worker'})", "failed"
            else:
                why, status = f"{type(exc).__name__}: {exc}", "failed"
            now = time.time()
            return CellResult(cell=cell, status=status, host=worker or "unknown", started=now,
                              finished=now, reason=why, worker=worker)  # fmt: skip
        worker = payload.get("worker") if isinstance(payload, dict) else None
        try:
            delivery = decode(payload)
        except WireError as exc:
            now = time.time()
            return CellResult(cell=cell, status="failed", host=worker or "unknown", started=now,
                              finished=now, reason=str(exc), worker=worker)  # fmt: skip
        result = delivery.result
        result.worker = worker
        result.extras = {
            "fingerprint": delivery.fingerprint,
            "confounds": delivery.confounds,
            "logs": dict(payload.get("logs") or {}),
        }
        return result

    def cancel(self, allocator: str) -> None:
        """Cancel an allocator's cells still queued (its run has ended)."""
        with self._lock:
            self._cancelled.add(allocator)
            for future in self.futures.get(allocator, []):
                if not future.done():
                    future.cancel()

    def stop(self) -> None:
        """Ctrl-C: stop the running cells (they clean up on their hosts), cancel the rest."""
        from distributed import Event, wait

        with self._lock:
            self.stopping = True
        try:
            Event(self.stop_name, client=self.client).set()
            running = {key for keys in self.client.processing().values() for key in keys}
        except Exception as exc:
            _say(f"could not reach the scheduler to stop the cells ({exc}); cancelling them")
            running = set()
        everything = [f for fs in self.futures.values() for f in fs if not f.done()]
        waiting = [f for f in everything if f.key in running]
        for future in everything:
            if future.key not in running:
                future.cancel()
        if waiting:
            _say(f"stopping {len(waiting)} running cell(s)")
            try:
                wait(waiting, timeout=STOP_WAIT_S)
            except Exception as exc:
                _say(f"{len(waiting)} cell(s) did not stop within {STOP_WAIT_S:g} s ({exc})")


def note_host(run: Run, spec: Spec, result: CellResult) -> None:
    """Record the host a delivery came from (its fingerprint, kind and confounds) and keep
    the service workers' logs where a local run keeps them: logs/<alloc>-r<n>/."""
    extras = result.extras
    if not extras:
        return
    m = run.manifest
    hosts = m.hosts if m.hosts is not None else {}
    m.hosts = hosts
    entry = hosts.setdefault(result.host, {"cells": 0})
    entry["cells"] += 1
    if fp := extras.get("fingerprint"):
        entry["fingerprint"] = fp
        entry["kind"] = kind_label(fp)
    if confounds := extras.get("confounds"):
        entry["confounds"] = confounds
        if not m.confounds:  # the run's headline: its first host's
            m.confounds = confounds
            mode = confounds.get("cgroup_mode")
            m.method = method_record(spec, **reclaim_support(mode))
    busiest = max(hosts.items(), key=lambda kv: kv[1]["cells"])
    if "fingerprint" in busiest[1]:  # the headline host, in a local run's terms
        fp = busiest[1]["fingerprint"]
        m.host = {k: fp[k] for k in HOST_KEYS if k in fp}
    m.host_kinds = sorted({h["kind"] for h in hosts.values() if "kind" in h})
    cell = result.cell
    folder = f"{cell.allocator}-r{cell.repeat}" + (f"-k{cell.kind}" if cell.kind else "")
    with writing(run.folder):
        for name, data in (extras.get("logs") or {}).items():
            atomic_write_bytes(run.folder / "logs" / folder / name, data)


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
) -> tuple[Path, Outcome]:
    """Run the study's cells on the cluster at `address` (`local`: a LocalCluster here);
    the run folder and its outcome, as bench.run.local.run_study returns them."""
    kinds = host_kinds(spec, require or [])
    # names and descriptions only: each host resolves its own
    allocs = only_allocators(resolve_spec(spec, build=False), spec, only)
    with connect(address) as client:
        for kind in kinds:
            wait_for_hosts(client, resources_for(kind), address)
        run = Run.open(
            spec, allocs, spec_path=spec_path, out=out, resume=resume, resolved_here=False
        )
        if run.manifest.cluster is None:  # a new run: its headline host is the busiest host
            run.manifest.host = {}
        run.manifest.cluster = {
            "address": address,
            "scheduler": client.scheduler.address,
            "workers": len(client.scheduler_info(n_workers=-1)["workers"]),
            "host_kinds": kinds,
            "attempts": ATTEMPTS,
        }
        todo = [a.name for a in allocs if a.name not in run.kept]
        rounds = plan_rounds(
            spec, todo, kinds=len(kinds), skip_service=skip_service, skip_control=skip_control
        )
        executor = DaskExecutor(spec, client, run, kinds, rounds, wait)
        run.on_merge.append(lambda result: note_host(run, spec, result))
        run.save()
        with sigterm_as_interrupt():
            client.subscribe_topic(executor.topic, _print_line)
            cells = sum(len(r.cells) for r in rounds)
            hosts = len(hosts_offering(client, resources_for({})))
            _say(f"{cells} cells on {hosts} host(s) of {address}")
            outcome = drive(run, executor, rounds)
    run.complete()
    return run.folder, outcome
