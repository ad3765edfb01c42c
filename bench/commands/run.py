"""`allocstudy run`: the study of a spec (bench.run), as the terminal sees it.

It ends with the run's headline table (bench.commands.runs.print_summary: the article's own
numbers) and prints the run folder as its last line, also when interrupted (the partial run is kept,
marked incomplete, and `--resume` continues it); exit codes are bench.errors': 0 when every
allocator that resolved ran, 3 when one failed, 1 when the results folder cannot be written
or the machine cannot hold the spec's memory limit (no writable memory cgroup), 2 for bad
arguments (or a --resume whose spec has changed), 130 when interrupted.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.cluster.engine import require_dask
from bench.cluster.executor import run_cluster_study
from bench.commands.runs import print_summary
from bench.errors import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SATURATED,
    UsageError,
    UserError,
)
from bench.measure import journal
from bench.measure.groups import cgroup_support
from bench.measure.memlimit import unavailable_reason
from bench.measure.runlock import machine_lock
from bench.results.rundir import check_writable, find_resumable
from bench.results.tables import TableError, read_table
from bench.run.driver import Outcome
from bench.run.local import check_only, run_study
from bench.scratch import sweep_stale
from bench.spec import Spec

__all__ = ["run_command"]


def run_command(
    spec: Spec,
    *,
    spec_path: Path,
    out: Path,
    only: list[str] | None,
    resume: bool,
    skip_control: bool = False,
    skip_service: bool = False,
    wait: bool = False,
    cluster: str | None = None,
    require: list[str] | None = None,
) -> int:
    """The CLI's `run`: prints the run folder as its last line (also when interrupted).

    The whole run holds the machine lock (bench.measure.runlock): a second run at the same
    time refuses to start (MachineBusy, exit 4), or with `wait` starts when the first ends.
    With `cluster` (a scheduler address, or `local`) the cells run on the cluster's hosts
    instead (bench.cluster); each cell holds its own host's lock, this machine's is not taken.
    """
    started = time.monotonic()
    check_only(spec, only)  # a typo is the user's to fix now, not after waiting for the machine
    if require and cluster is None:
        raise UsageError("--require routes the cells of a cluster run: use it with --cluster")
    if cluster is not None and spec.service.calibrate is not None:
        raise UsageError(
            "service.calibrate finds the app's rate on this machine: run it without --cluster "
            "(or give service.rate and drop calibrate)"
        )
    if cluster is not None:
        require_dask()  # one line and exit 2 before anything is made
    check_writable(out / spec.name)  # before waiting for the machine, or measuring
    mix = spec.service.request_mix  # read and checked when the spec loaded
    if mix is not None and not skip_service:
        print(f"allocstudy: requests: {mix.summary}", file=sys.stderr, flush=True)
    if cluster is not None:
        return _finish(
            spec,
            out,
            started,
            lambda: run_cluster_study(
                spec,
                spec_path=spec_path,
                out=out,
                address=cluster,
                only=only,
                resume=resume,
                skip_control=skip_control,
                skip_service=skip_service,
                require=require or [],
                wait=wait,
            ),
        )
    if spec.service.memory_limit_mb is not None and not skip_service:
        support = cgroup_support()  # a limit needs a cgroup to hold it: refused, never dropped
        if why := unavailable_reason(support.mode, support.reason):
            raise UserError(why, exit_code=EXIT_CANNOT_RUN)

    def local() -> tuple[Path, Outcome]:
        with machine_lock(
            wait=wait,
            on_wait=lambda text: print(f"allocstudy: {text}", file=sys.stderr, flush=True),
        ):
            for line in journal.recover():  # what a killed run left changed, put back first
                print(f"allocstudy: {line}", file=sys.stderr, flush=True)
            sweep_stale()  # and the scratch it could not remove (its maker's pid is gone)
            return run_study(
                spec,
                spec_path=spec_path,
                out=out,
                only=only,
                resume=resume,
                skip_control=skip_control,
                skip_service=skip_service,
            )

    return _finish(spec, out, started, local)


def exit_code(outcome: Outcome) -> int:
    """The run's exit code before saturation is looked at: 3 when an allocator failed."""
    return EXIT_FAILED if outcome.failed else EXIT_OK


def _finish(spec: Spec, out: Path, started: float, run: Callable[[], tuple[Path, Outcome]]) -> int:
    """Run the study; print the run folder last (also when interrupted), return the code."""
    try:
        run_dir, outcome = run()
        code = exit_code(outcome)
    except KeyboardInterrupt:
        print(
            "allocstudy: interrupted; the partial run is kept and marked incomplete "
            "(resume it with --resume)",
            file=sys.stderr,
        )
        latest = find_resumable(out, spec.name, spec.spec_hash)
        if latest is not None:
            print(latest)
        return EXIT_INTERRUPTED
    print(f"allocstudy: run finished in {time.monotonic() - started:.0f} s", file=sys.stderr)
    print_summary(run_dir)  # the article's numbers, before the folder (scripts read it last)
    if saturated := saturated_allocators(run_dir):
        print(
            f"allocstudy: the service could not keep up with the asked rate under "
            f"{', '.join(saturated)}: those repeats are not ranked; lower service.rate (or "
            "give the app more workers) and run again",
            file=sys.stderr,
        )
        if code == EXIT_OK:
            code = EXIT_SATURATED
    sys.stdout.flush()
    print(run_dir)
    return code


def saturated_allocators(run_dir: Path) -> list[str]:
    """The allocators with a saturated service repeat in a finished run (none: [])."""
    try:
        rows = read_table(run_dir / "summary.arrow", "summary").to_pylist()
    except TableError:
        return []
    return sorted({str(r["allocator"]) for r in rows if r.get("saturated")})
