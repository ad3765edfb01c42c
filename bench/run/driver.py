"""The one run driver: the plan's cells through an executor into the run, to an outcome.

An executor runs one cell and returns what it measured: `submit(cell) -> CellResult`. The
local one (bench.run.local) runs it here, the Dask one (bench.cluster.executor) on a host of
the cluster; `parallel` says whether the driver may wait on many at once (one thread per cell
in flight, each blocked in its submit). Either way the driver does the same: before an
allocator's first cell it lets the executor `begin` it (verify it here, or nothing), takes
every result into the run as it comes (bench.run.lifecycle.Run.merge), marks an allocator ok
when its last cell is in, stops submitting an allocator's cells once it failed (`cancel`), and
on Ctrl-C stops the executor with the signals held, marks the run incomplete and re-raises.
The outcome is `Outcome`; only the command (bench.commands.run) maps it to an exit code.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Protocol

from bench.experiments.cell import Cell, CellResult
from bench.results.manifest import FINISHED, AllocatorRecord, RoundOrder
from bench.run.lifecycle import CellKey, Run, cell_key
from bench.run.rounds import Round
from bench.run.signals import raise_if_interrupted, signals_held

__all__ = ["Executor", "Outcome", "drive"]


class Executor(Protocol):
    """Where cells run. `parallel`: submit may be called from several threads at once."""

    parallel: bool

    def begin(self, name: str, record: AllocatorRecord) -> str:
        """Before an allocator's first cell: its status after (running, skipped, failed)."""
        ...

    def submit(self, cell: Cell) -> CellResult:
        """Run one cell; its result (failed with the reason when it failed)."""
        ...

    def cancel(self, allocator: str) -> None:
        """The allocator's run ended: its cells not yet under way need not run."""
        ...

    def stop(self) -> None:
        """Ctrl-C: stop the cells under way (they clean up), drop the rest."""
        ...

    def say(self, text: str) -> None:
        """One line for the terminal."""
        ...

    def next_allocator(self, name: str) -> None:
        """In turn: the driver comes to the allocator's place in a round (the display counts)."""
        ...


@dataclass(frozen=True)
class Outcome:
    """How a run ended: `failed` names the allocators whose part of it failed."""

    failed: tuple[str, ...]


def drive(run: Run, executor: Executor, rounds: list[Round]) -> Outcome:
    """Run the plan's cells not done yet; the outcome. KeyboardInterrupt after recording an
    interrupted run (the executor stopped, the run saved incomplete)."""
    failed = [n for n, status in run.kept.items() if status == "failed"]
    for name, status in run.kept.items():
        executor.say(f"{name}: kept from the interrupted run ({status})")
    names = [n for n in dict.fromkeys(n for r in rounds for n in r.allocators)]
    remaining: dict[str, set[CellKey]] = {n: set() for n in names if n not in run.kept}
    for rnd in rounds:
        for cell in rnd.cells:
            if cell.allocator in remaining:
                remaining[cell.allocator].add(cell_key(cell))
    for name, keys in remaining.items():
        keys -= run.done_cells.get(name, set())

    def settle(result: CellResult) -> None:
        if result.extras.get("not_run"):  # cancelled before it ran: nothing to record
            return
        record = run.record(result.cell.allocator)
        if record.status in FINISHED or result.status == "interrupted":
            for earlier in result.earlier:
                run.line(earlier)
            run.line(result)  # recorded, not merged: its allocator ended, or the run stops
            run.save()
            return
        run.merge(result)
        name = result.cell.allocator
        if result.status == "ok":
            remaining[name].discard(cell_key(result.cell))
            if not remaining[name] and executor.parallel:  # in turn: at the end of its round
                run.allocator_done(name)
                executor.say(f"{name}: ok")
        else:
            executor.say(f"{name}: {result.status}: {result.reason}")
            if result.status == "failed":
                failed.append(name)
            executor.cancel(name)

    def wanted(cell: Cell) -> bool:
        return cell_key(cell) in remaining.get(cell.allocator, set())

    def started(name: str) -> bool:
        record = run.record(name)
        if record.status == "pending":
            status = executor.begin(name, record)
            run.save()
            if status == "failed":
                failed.append(name)
        return run.record(name).status not in FINISHED

    try:
        if executor.parallel:
            _drive_parallel(run, executor, rounds, wanted, started, settle)
            for name, keys in remaining.items():  # every cell kept from before, or none
                if not keys and run.record(name).status == "running":
                    run.allocator_done(name)
        else:
            for rnd in rounds:
                run.manifest.order.append(
                    RoundOrder.new(round=rnd.index, allocators=rnd.allocators)
                )
                for name in rnd.allocators:
                    executor.next_allocator(name)
                    if name not in remaining or not started(name):
                        continue  # kept, or finished (skipped, failed) in an earlier round
                    for cell in (c for c in rnd.cells if c.allocator == name and wanted(c)):
                        settle(executor.submit(cell))
                        raise_if_interrupted()
                        if run.record(name).status in FINISHED:
                            break
                    if rnd is rounds[-1] and run.record(name).status == "running":
                        run.allocator_done(name)  # with no cell at all: verified, so ok
                        executor.say(f"{name}: ok")
                    run.save()
    except KeyboardInterrupt as exc:
        with signals_held():  # a second signal must not cut the stop short
            executor.stop()
            run.interrupt(exc)
        raise
    return Outcome(tuple(dict.fromkeys(failed)))


def _drive_parallel(run, executor, rounds, wanted, started, settle) -> None:  # type: ignore[no-untyped-def]
    """Every wanted cell submitted at once, in the plan's order; results taken as they come."""
    for rnd in rounds:
        run.manifest.order.append(RoundOrder.new(round=rnd.index, allocators=rnd.allocators))
    cells = [c for rnd in rounds for c in rnd.cells if wanted(c) and started(c.allocator)]
    run.save()
    pool = ThreadPoolExecutor(max_workers=max(1, len(cells)), thread_name_prefix="cell")
    pending: set[Future[CellResult]] = {pool.submit(executor.submit, c) for c in cells}
    try:
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                if not future.cancelled():
                    settle(future.result())
    except KeyboardInterrupt:
        with signals_held():
            executor.stop()  # the cells under way stop; their threads return
            done, _ = wait(pending, timeout=5.0)
            for future in done:
                if not future.cancelled() and future.exception() is None:
                    settle(future.result())
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
