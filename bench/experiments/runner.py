"""The study: every allocator of a spec through the service experiment and the control.

The pipeline: resolve the allocators, open a run folder (or the one to resume), hold the
confounds, then run the repeats in rounds: round r runs repeat r of every allocator (its
service repeat, then its control repeat), the allocators in an order rotated by r, so that no
allocator always runs first on a cold machine or last on a warm one. An allocator is verified
before its first repeat, and is ok as soon as its last repeat is done. Tables and manifest are
written after every repeat so an interrupted or failed run keeps everything measured so far
(--resume keeps the allocators that were done and measures the rest). A repeat in which a
worker died is kept, flagged, and fails its allocator, unless the spec's memory limit killed
it (then it is a result: the repeat goes on, bench.experiments.oomkills). `latest` moves only
when the run completes.
"""

from __future__ import annotations

import random
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.allocators import knobs, timers
from bench.allocators.registry import Allocator, resolve_spec
from bench.allocators.verification import verify
from bench.errors import EXIT_FAILED, EXIT_OK, EXIT_SATURATED, UsageError, UserError
from bench.experiments.cell import Cell, cell_record, host_name, merge_cell, run_cell, stamp_host
from bench.experiments.harness import ExperimentError, Interrupted, core_plan
from bench.measure import machine
from bench.measure.groups import cgroup_support
from bench.measure.memlimit import limit_bytes
from bench.progress import Progress
from bench.results.manifest import MANIFEST_FORMAT, read_manifest
from bench.results.resume import run_to_resume
from bench.results.rundir import new_run_dir, read_rows, save_run, set_latest
from bench.spec import Spec
from bench.toolinfo import library_versions, tool_record
from service.config import health_path

__all__ = [
    "FINISHED",
    "CalibrationFailed",
    "allocator_record",
    "calibrated",
    "base_manifest",
    "check_only",
    "confound_record",
    "method_record",
    "only_allocators",
    "reclaim_support",
    "resumable_run",
    "rotated",
    "round_order",
    "spec_twins",
    "round_cells",
    "round_count",
    "run_study",
    "sigterm_as_interrupt",
    "spec_record",
    "start_allocator",
    "workload_record",
]

FINISHED = ("ok", "failed", "skipped")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C, so every finally-block cleans up.

    SIGINT is set here too, not left as inherited: a shell starts background jobs with SIGINT
    ignored, and Python keeps an ignored SIGINT ignored, so `kill -INT` would do nothing.
    An ignored SIGHUP stays ignored: that is `nohup`, asking the run to outlive its terminal.
    """

    def _raise(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    wanted = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        wanted.append(signal.SIGHUP)
    old = {s: signal.signal(s, _raise) for s in wanted}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def allocator_record(alloc: Allocator) -> dict[str, Any]:
    return {
        "name": alloc.name,
        "kind": alloc.kind,
        "base": alloc.base,
        "same_as": alloc.same_as,
        "description": alloc.description,
        "library": str(alloc.library) if alloc.library else None,
        "expected_library": alloc.expected_library() if alloc.available else None,
        "version": None,
        "sha256": alloc.sha256,
        "env": alloc.env,
        "status": "pending",
        "reason": None,
        "fix": alloc.fix,
        "evidence": {"service": [], "control": []},
        "knobs": [],  # the variant's settings, read back (bench.allocators.knobs.merge)
        "timers": [],  # its return timers, read back (bench.allocators.timers)
        "phases": {"service": [], "control": []},
        "loadgen": [],
        "sampler": [],
        "live_set": [],
        "wall_s": {"service": [], "control": []},
        "started": None,
        "finished": None,
    }


PROJECT_ROOT = Path(__file__).resolve().parents[2]


def spec_file_record(spec_path: Path, project: Path = PROJECT_ROOT) -> dict[str, str | None]:
    """The spec file absolutely and, when it lies in the project, relative to the project: a
    results folder moved to another checkout still finds its spec for the stale-data check."""
    absolute = spec_path.resolve()
    try:
        relative: str | None = str(absolute.relative_to(project))
    except ValueError:
        relative = None
    return {"spec_file_absolute": str(absolute), "spec_file_project": relative}


def workload_record(spec: Spec) -> dict[str, Any] | None:
    """What the service ran and what drove it, when it is not the built-in service's own mix:
    the app (a hosted app: service.hosted) and the request file's mix (None: neither)."""
    s = spec.service
    mix = s.request_mix
    if s.app is None and mix is None:
        return None
    return {
        "app": s.app,
        "interface": s.interface if s.app else None,
        "app_dir": str(s.app_dir) if s.app_dir else None,
        **(mix.record() if mix is not None else {}),
    }


def spec_record(spec: Spec) -> dict[str, Any]:
    """The resolved spec as the manifest stores it, with the request file's digest, so that
    --resume can say it was the traffic that changed."""
    data = spec.model_dump(mode="json")
    if (mix := spec.service.request_mix) is not None:
        data["service"]["requests_sha256"] = mix.sha256
    return data


def base_manifest(spec: Spec, spec_path: Path, run_dir: Path) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "tool": tool_record(),
        "run_id": run_dir.name,
        "spec_name": spec.name,
        "spec_file": str(spec_path),
        **spec_file_record(spec_path),
        "spec_sha256": spec.spec_hash,
        # `--set KEY=VALUE` changes made for this run only (the hash above includes them)
        "spec_overrides": list(spec.overrides),
        "spec": spec_record(spec),
        "workload": workload_record(spec),
        "status": "running",
        "started": _now(),
        "finished": None,
        "host": machine.host_info(),
        # the Python packages that shape what is measured (held against constraints.txt)
        "libraries": library_versions(),
        "confounds": {},
        "method": {},
        "order": [],
        "allocators": [],
    }


def rotated(names: list[str], round_index: int) -> list[str]:
    """The allocators in round `round_index`: the list rotated left by that many places."""
    if not names:
        return []
    k = round_index % len(names)
    return names[k:] + names[:k]


def round_order(
    names: list[str], round_index: int, *, twins: Mapping[str, str] | None = None, seed: int = 0
) -> list[str]:
    """The allocators of one round: the others rotated by the round, and each A/A duplicate
    (`twins`: duplicate -> the allocator it runs again) at a place drawn from `seed` and the
    round, never directly before or after its twin.

    A duplicate always run last, or beside its twin, would share its twin's moment of the
    machine (or always the end of a round) and measure less drift than two allocators placed
    anywhere do; a drawn place, recorded in the manifest's order, gives the pair the same
    exposure as any other two. With nothing else to put between them they stay adjacent.
    """
    twins = twins or {}
    order = rotated([n for n in names if n not in twins], round_index)
    rng = random.Random(f"{seed}:{round_index}")
    for duplicate, twin in twins.items():
        if duplicate not in names:
            continue
        spots = [i for i in range(len(order) + 1) if twin not in order[max(0, i - 1) : i + 1]]
        order.insert(rng.choice(spots) if spots else len(order), duplicate)
    return order


def spec_twins(spec: Spec) -> dict[str, str]:
    """The spec's A/A duplicate and its twin ({} without an A/A pair)."""
    return {spec.aa_again: spec.aa_pair} if spec.aa_pair and spec.aa_again else {}


def method_record(spec: Spec, *, can_reclaim: bool, reclaim_how: str) -> dict[str, Any]:
    """The choices of method a reader needs to read the numbers (the article quotes them)."""
    s = spec.service
    return {
        "idle_rate": s.idle_rate,
        "idle_traffic": (
            f"GET {health_path(s.app)} at {s.idle_rate:g} "
            f"request{'' if s.idle_rate == 1 else 's'}/s"
            if s.idle_rate > 0
            else "none (a silent idle: nothing calls the allocator)"
        ),
        "idle_probes": (
            "rotated over one kept-alive connection per worker" if s.idle_rate > 0 else None
        ),
        "settle_window_s": s.settle_window_s,
        "reclaim": {"possible": can_reclaim, "how": reclaim_how},
        "memory_sampled_from": "service launch",
        "latency_failures": f"failed requests counted at {s.request_timeout_s:g} s or more",
        "live_set_fill_s": s.fill_s,
        "memory_limit_bytes": limit_bytes(s.memory_limit_mb),  # the service cgroup's, or None
        "order": "rotated by repeat"
        + (
            "; the A/A duplicate at a place drawn from the churn seed and the round, never "
            "beside its twin"
            if spec_twins(spec)
            else ""
        ),
    }


class CalibrationFailed(UserError):
    """The app did not hold even the ramp's lowest step: nothing can be measured at a rate
    it holds. Exit 5, as a saturated run; `record` is the ramp as measured."""

    exit_code = EXIT_SATURATED

    def __init__(self, message: str, record: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.record = record


def calibrated(
    spec: Spec,
    manifest: dict[str, Any],
    allocs: list[Allocator],
    cores: Any,
    progress: Progress,
) -> Spec:
    """The spec at the rate its calibration found (bench.experiments.calibrate), measured
    now on the first allocator that can be had, or taken from the manifest on --resume, so
    every repeat of a run is measured at one rate. The manifest's `calibration` records it."""
    from bench.experiments.calibrate import Calibration, calibrate, with_rate

    record = manifest.get("calibration")
    if not record or record.get("rate") is None:
        first = next((a for a in allocs if a.available), None)
        if first is None:
            return spec  # nothing to measure here: every allocator will be skipped
        cal = spec.service.calibrate
        assert cal is not None
        progress.say(
            f"calibrating on {first.name}: {cal.steps} steps of {cal.step_s:g} s up to "
            f"{spec.service.rate:g} requests/s"
        )
        try:
            record = calibrate(spec, first, cores)
        except Calibration as failed:
            raise CalibrationFailed(str(failed), failed.record) from None
        manifest["calibration"] = record
        progress.say(
            f"calibration: held {record['found_rps']:g} requests/s; the study runs at "
            f"{record['rate']:g} ({record['fraction']:g} of it)"
        )
    return with_rate(spec, float(record["rate"]))


def _drop_rows(rows: dict[str, list[dict[str, Any]]], allocator: str) -> None:
    for name in rows:
        rows[name] = [r for r in rows[name] if r.get("allocator") != allocator]


def check_only(spec: Spec, only: list[str] | None) -> None:
    """UsageError when --only names an allocator the spec does not have (the A/A duplicate
    counts as one it has)."""
    if only and (unknown := sorted(set(only) - set(spec.allocator_names))):
        raise UsageError(
            f"--only names allocators the spec does not have: {', '.join(unknown)} "
            f"(spec has {', '.join(spec.allocator_names)})"
        )


def only_allocators(allocs: list[Allocator], spec: Spec, only: list[str] | None) -> list[Allocator]:
    """The spec's resolved allocators that --only keeps (all without it), checked first."""
    check_only(spec, only)
    return [a for a in allocs if a.name in only] if only else allocs


def resumable_run(spec: Spec, *, spec_path: Path, out: Path) -> Path | None:
    """The incomplete run of this spec that --resume continues, or None (said on stderr: the
    run then starts anew). SpecChanged when the newest incomplete run had another spec."""
    run_dir = run_to_resume(
        out,
        spec_name=spec.name,
        spec_hash=spec.spec_hash,
        spec=spec_record(spec),
        spec_path=spec_path,
    )
    if run_dir is None:
        print(
            f"allocstudy: nothing to resume for {spec.name} (no incomplete run with this "
            "spec hash); starting a new run",
            file=sys.stderr,
            flush=True,
        )
    return run_dir


def run_study(
    spec: Spec,
    *,
    spec_path: Path,
    out: Path,
    only: list[str] | None = None,
    resume: bool = False,
    skip_control: bool = False,
    skip_service: bool = False,
) -> tuple[Path, int]:
    """Run the study; return the run folder and the exit code (EXIT_OK, or EXIT_FAILED when a
    resolved allocator failed). Raises UsageError for --only names the spec does not have,
    SpecChanged for a --resume whose run was made with another spec, RunFolderError when the
    results folder cannot be written, and KeyboardInterrupt after recording an interrupted
    run."""
    allocs = only_allocators(resolve_spec(spec), spec, only)

    run_dir = resumable_run(spec, spec_path=spec_path, out=out) if resume else None
    if run_dir is not None:
        manifest = read_manifest(run_dir)
        rows = read_rows(run_dir)
        done = {a["name"]: a for a in manifest["allocators"] if a["status"] in FINISHED}
        manifest["status"] = "running"
    else:
        run_dir = new_run_dir(out, spec.name)
        manifest = base_manifest(spec, spec_path, run_dir)
        rows = {"memory": [], "requests": [], "control": [], "summary": [], "restarts": []}
        done = {}
    records = {a["name"]: a for a in manifest["allocators"]}
    for alloc in allocs:
        if alloc.name not in done:
            _drop_rows(rows, alloc.name)  # partial rows of an interrupted allocator
            records[alloc.name] = allocator_record(alloc)
    manifest["allocators"] = [records[a.name] for a in allocs] + [
        r for n, r in records.items() if n not in {a.name for a in allocs}
    ]

    cores = core_plan(spec.machine.pin_cores)
    cg = cgroup_support() if spec.machine.cgroup == "auto" else None
    exit_code = EXIT_OK

    def _save() -> None:
        save_run(run_dir, rows, manifest)

    try:
        with (
            sigterm_as_interrupt(),
            machine.thp_disabled(spec.machine.set_confounds) as thp,
            Progress(total=len(allocs)) as progress,
        ):
            manifest["confounds"] = confound_record(spec, thp=thp, cg=cg, cores=cores)
            manifest["method"] = method_record(spec, **reclaim_support(cg))
            _save()
            todo = [a for a in allocs if a.name not in done]
            if spec.service.calibrate is not None and not skip_service:
                try:
                    spec = calibrated(spec, manifest, todo, cores, progress)
                except (CalibrationFailed, ExperimentError) as failed:
                    manifest.update(status="incomplete", finished=_now())
                    if (record := getattr(failed, "record", None)) is not None:
                        manifest["calibration"] = record
                    _save()
                    raise
                _save()
            for a in allocs:
                if a.name in done:
                    kept = done[a.name]["status"]
                    progress.say(f"{a.name}: kept from the interrupted run ({kept})")
                    if kept == "failed":  # the run's result holds a failed allocator: exit 3
                        exit_code = EXIT_FAILED
            rounds = round_count(spec, skip_service=skip_service, skip_control=skip_control)
            by_name = {a.name: a for a in todo}
            progress.total = rounds * len(todo)
            from bench.experiments.plan import unit_seconds  # plan builds on this module

            progress.steps_s = unit_seconds(
                spec,
                [a.name for a in todo],
                rounds,
                skip_service=skip_service,
                skip_control=skip_control,
                unavailable=frozenset(a.name for a in todo if not a.available),
            )
            for r in range(rounds):
                order = round_order(
                    [a.name for a in todo], r, twins=spec_twins(spec), seed=spec.service.churn.seed
                )
                manifest["order"].append({"round": r, "allocators": order})
                for name in order:
                    progress.index += 1
                    alloc, record = by_name[name], records[name]
                    if record["status"] in FINISHED:
                        continue  # skipped or failed in an earlier round
                    status = _run_round(
                        spec,
                        alloc,
                        r,
                        record,
                        rows,
                        manifest,
                        progress,
                        cores,
                        skip_control=skip_control,
                        skip_service=skip_service,
                        save=_save,
                        logs=run_dir / "logs",
                    )
                    if status == "failed":
                        exit_code = EXIT_FAILED
                    elif status == "running" and r == rounds - 1:
                        # done now, not at the end of the run: an interrupted run keeps it
                        record.update(status="ok", finished=_now())
                        progress.say(f"{name}: ok")
                    _save()
            manifest["confounds"]["cpu_pressure"]["avg10_end"] = getattr(
                machine.cpu_pressure(), "avg10", None
            )
    except KeyboardInterrupt as exc:
        # saved after the confounds were restored, so the manifest says whether they were
        for rec in manifest["allocators"]:
            if rec["status"] == "running" and isinstance(exc, Interrupted):
                # the interrupted repeat's samples and requests are kept, marked by the status
                partial = {"memory": exc.memory, "requests": exc.requests}
                stamp_host(partial, host_name())
                rows["memory"] += exc.memory
                rows["requests"] += exc.requests
                rec["phases"][exc.experiment] += exc.phases
            if rec["status"] in ("pending", "running"):
                rec["status"] = "incomplete"
                rec["reason"] = "interrupted"
        manifest["status"] = "incomplete"
        manifest["finished"] = _now()
        _save()
        raise
    manifest["status"] = "complete"  # confounds.thp now says whether THP was restored
    manifest["finished"] = _now()
    _save()
    set_latest(run_dir)
    return run_dir, exit_code


def confound_record(spec: Spec, *, thp: dict[str, Any], cg: Any, cores: Any) -> dict[str, Any]:
    """The confounds this machine holds for a run (or a cluster cell), as the manifest keeps
    them: THP (bench.measure.machine.thp_disabled's record), swap, governor, memory groups,
    pinning, the Python allocator, root, and the CPU pressure at the start."""
    return {
        "thp": thp,
        "swap_bytes": machine.swap_bytes(),
        "governor": machine.governor(),
        "cgroup_mode": cg.mode if cg else "none",
        "cgroup": cg.reason if cg else "procfs (spec machine.cgroup: none)",
        "pinning": cores.as_record(),
        "python_malloc": spec.service.python_malloc,
        "page_cache_dropped": False,
        "root": machine.is_root(),
        "cpu_pressure": {"avg10_start": getattr(machine.cpu_pressure(), "avg10", None)},
    }


def reclaim_support(cg: Any) -> dict[str, Any]:
    """Whether this machine's memory groups can force a reclaim, and how (or why not)."""
    mode = cg.mode if cg else "none"
    if mode == "v2":
        return {"can_reclaim": True, "reclaim_how": "cgroup v2 memory.reclaim"}
    if mode == "v1":
        return {
            "can_reclaim": False,
            "reclaim_how": "none: cgroup v1 has no reclaim that works while tasks run",
        }
    return {"can_reclaim": False, "reclaim_how": "none: no memory cgroup (procfs sampling)"}


def round_count(spec: Spec, *, skip_service: bool, skip_control: bool) -> int:
    """How many rounds: the larger of the service and the control repeat counts (at least 1,
    so that an allocator with nothing to run is still verified)."""
    counts = [1]
    if not skip_service:
        counts.append(spec.repeats)
    if not skip_control and spec.control.enabled:
        counts.append(spec.control.repeats)
    return max(counts)


def start_allocator(alloc: Allocator, record: dict[str, Any], progress: Progress) -> str:
    """Before an allocator's first repeat: skip it or verify it; its status."""
    record["started"] = _now()
    if not alloc.available:
        record.update(status="skipped", reason=alloc.reason, finished=_now())
        progress.say(f"{alloc.name}: skipped: {alloc.reason}")
        return "skipped"
    check = verify(alloc)
    record["version"] = check.version
    record["knobs"] = knobs.merge([check.knobs])  # read back in the probe, before any repeat
    record["timers"] = timers.to_records(check.timers)  # when it gives memory back on its own
    if not check.ok:
        record.update(status="failed", reason=f"verification: {check.reason}", finished=_now())
        progress.say(f"{alloc.name}: failed: {record['reason']}")
        return "failed"
    record["status"] = "running"
    return "running"


def _run_round(
    spec: Spec,
    alloc: Allocator,
    repeat: int,
    record: dict[str, Any],
    rows: dict[str, list[dict[str, Any]]],
    manifest: dict[str, Any],
    progress: Progress,
    cores: Any,
    *,
    skip_control: bool,
    skip_service: bool,
    save: Any,
    logs: Path,
) -> str:
    """Repeat `repeat` of one allocator, its service cell then its control cell; its status
    afterwards. A cell that fails ends the allocator's round (and its run). The service's
    workers write their own output under `logs` (one folder per repeat)."""
    if record["status"] == "pending":
        status = start_allocator(alloc, record, progress)
        if status != "running":
            return status
        save()
    for cell in round_cells(spec, alloc.name, repeat, skip_service=skip_service,
                            skip_control=skip_control):  # fmt: skip
        result = run_cell(
            spec, alloc, cell, cores=cores, progress=progress,
            log_dir=logs / f"{alloc.name}-r{repeat}",
        )  # fmt: skip
        if result.page_cache_dropped is not None:
            manifest["confounds"]["page_cache_dropped"] = result.page_cache_dropped
        merge_cell(record, rows, result)
        manifest.setdefault("cells", []).append(cell_record(result))
        if result.status == "failed":
            progress.say(f"{alloc.name}: failed: {result.reason}")
            return "failed"
    return "running"


def round_cells(
    spec: Spec, allocator: str, repeat: int, *, skip_service: bool, skip_control: bool
) -> list[Cell]:
    """The cells of one allocator in round `repeat`: its service repeat, then its control
    repeat, each only if the spec (and the --no-* options) has that many."""
    cells = []
    if not skip_service and repeat < spec.repeats:
        cells.append(Cell(allocator, "service", repeat))
    if not skip_control and spec.control.enabled and repeat < spec.control.repeats:
        cells.append(Cell(allocator, "control", repeat))
    return cells
