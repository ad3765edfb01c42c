"""A rate the app can hold: find it before measuring, instead of measuring a queue.

A user studying their own app cannot know its capacity in advance; asked for more than it
serves, an open-loop load queues, requests time out, and every number measured is a queue's
(bench.measure.runstats.saturation names such a repeat afterwards). With `service.calibrate`
the run first ramps the load up on one allocator (the spec's first that can be had, stated):
steps of `step_s` seconds at rates doubling from `service.rate` / 2^(steps - 1) up to
`service.rate`, each judged by what the service answered in it; the highest step held is the
app's rate on this machine, and the study runs at `fraction` of it. The ramp, the rate found
and the rate used are recorded in the manifest (`calibration`) and shown on the page.

The rules are pure functions (`ramp_rates`, `step_held`, `found_rate`); `calibrate` is the
part with processes and clocks, reusing the service launcher and the load generator.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bench.allocators.registry import Allocator
from bench.experiments.harness import CorePlan, ExperimentError
from bench.load.config import LoadConfig, LoadgenError
from bench.load.handle import start_loadgen, wait_loadgen
from bench.measure import runstats
from bench.results.tables import read_table
from bench.scratch import scratch_dir
from bench.spec import Spec
from service.launcher import LaunchError, free_port, start_service
from service.process.tree import pin_tree

__all__ = [
    "Calibration",
    "Step",
    "calibrate",
    "found_rate",
    "ramp_rates",
    "step_held",
    "with_rate",
]


class Calibration(ExperimentError):
    """Not even the ramp's lowest step held; `record` is the ramp as measured."""

    def __init__(self, message: str, record: dict[str, Any]) -> None:
        super().__init__(message)
        self.record = record


def with_rate(spec: Spec, rate: float) -> Spec:
    """The spec as measured: `service.rate` the rate found, no calibration left to run."""
    return spec.model_copy(
        update={"service": spec.service.model_copy(update={"rate": rate, "calibrate": None})}
    )


#: A step holds when the service answered at least this share of its rate within the step
#: and the timeout, left no more than UNANSWERED_SHARE unanswered, and kept p99 under the bound.
HELD_RATE_SHARE = 0.95
UNANSWERED_SHARE = 0.01


@dataclass(frozen=True)
class Step:
    """One step of the ramp as measured."""

    rate: float
    requests: int
    answered: int
    p99_ms: float | None
    held: bool


def ramp_rates(top: float, steps: int) -> list[float]:
    """The rates of the ramp, lowest first: `top` halved `steps - 1` times, doubling up."""
    if top <= 0 or steps < 1:
        raise ValueError("a ramp needs a top rate above 0 and at least one step")
    return [top / 2 ** (steps - 1 - k) for k in range(steps)]


def step_held(
    rate: float, step_s: float, requests: int, answered: int, p99_ms: float | None, bound_ms: float
) -> bool:
    """Whether the service kept up with one step: answered its rate, left almost nothing
    unanswered, and kept its p99 latency (from the intended send time) under the bound."""
    if requests == 0:
        return False
    pace_ok = answered / step_s >= HELD_RATE_SHARE * rate
    lost_ok = requests - answered <= UNANSWERED_SHARE * requests
    return pace_ok and lost_ok and p99_ms is not None and p99_ms <= bound_ms


def found_rate(steps: Sequence[Step]) -> float | None:
    """The highest rate held before the first step that was not (None: not even the first)."""
    best = None
    for step in steps:
        if not step.held:
            break
        best = step.rate
    return best


def _steps(
    rows: list[dict[str, Any]], rates: list[float], step_s: float, timeout_s: float, bound: float
) -> list[Step]:
    out = []
    for k, rate in enumerate(rates):
        mine = [r for r in rows if r["phase"] == f"step{k + 1}"]
        answered = [r for r in mine if r.get("status")]
        latencies, _ = runstats.charged_latencies_ms(mine, timeout_s)
        p99 = runstats.percentile(latencies, 99)
        held = step_held(rate, step_s, len(mine), len(answered), p99, bound)
        out.append(Step(rate, len(mine), len(answered), p99, held))
    return out


def calibrate(spec: Spec, alloc: Allocator, cores: CorePlan) -> dict[str, Any]:
    """Ramp the load on `alloc` and return the manifest's record of it: the steps, the rate
    found and the rate to run at (`fraction` of it). Calibration when not even the lowest
    step held; ExperimentError when the service or the generator failed."""
    cal = spec.service.calibrate
    assert cal is not None, "calibrate() on a spec without service.calibrate"
    s = spec.service_for(alloc.name)
    rates = ramp_rates(s.rate, cal.steps)
    workdir = scratch_dir("calibrate")
    svc = None
    began = time.time()
    try:
        port = free_port()
        svc = start_service(
            python=sys.executable,
            workers=s.workers,
            port=port,
            env=alloc.preload_env(),
            service_config=s.model_dump(mode="json"),
            ready_timeout=60.0,
        )
        if cores.measured:  # as in a measured repeat: the service on its cores, the load apart
            pin_tree(svc.tree_pids(), cores.measured)
        config = LoadConfig.from_service_spec(
            s.model_copy(update={"idle_rate": 0.0, "warmup_s": 0.0}),
            base_url=f"http://127.0.0.1:{port}",
            cpus=sorted(cores.harness) if cores.harness else None,
            seed=s.churn.seed,
        )
        config = config.model_copy(
            update={
                "stages": [
                    config.stages[0].model_copy(
                        update={
                            "phase": f"step{k + 1}",
                            "rate": rate,
                            "duration_s": cal.step_s,
                            "load_stage": None,
                        }
                    )
                    for k, rate in enumerate(rates)
                ]
            }
        )
        out = workdir / "requests.arrow"
        try:
            wait_loadgen(start_loadgen(config, out))
        except LoadgenError as exc:
            raise ExperimentError(f"calibration: load generator: {exc}") from None
        rows = read_table(out, "requests").to_pylist()
    except LaunchError as exc:
        raise ExperimentError(f"calibration: the service did not start: {exc}") from None
    finally:
        if svc is not None:
            svc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    steps = _steps(rows, rates, cal.step_s, s.request_timeout_s, cal.p99_bound_ms)
    found = found_rate(steps)
    record: dict[str, Any] = {
        "allocator": alloc.name,
        "started": began,
        "steps": [asdict(x) for x in steps],
        "step_s": cal.step_s,
        "p99_bound_ms": cal.p99_bound_ms,
        "found_rps": found,
        "fraction": cal.fraction,
        "rate": None if found is None else round(found * cal.fraction, 3),
    }
    if found is None:
        first = steps[0]
        raise Calibration(
            f"calibration: the app did not hold even {first.rate:g} requests a second on "
            f"{alloc.name} (answered {first.answered} of {first.requests}, p99 "
            f"{first.p99_ms or 0:.0f} ms): lower service.rate, the top of the ramp, or give "
            "the app more workers",
            record,
        )
    return record
