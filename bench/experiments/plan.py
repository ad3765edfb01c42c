"""How long a spec will take: its cells in the order a run takes them, and each one's phases.

Pure arithmetic over the spec (no clocks, no allocators resolved): `allocstudy plan` prints it,
and the live display counts the whole run's time left from it. A cell's length is its
phases as the spec sets them plus a start-up allowance measured here (uvicorn's workers
starting and the allocator's proof, the control's process start); on a cluster the cells
are spread over the hosts in submission order, each to the host that frees first, as Dask
hands them out, plus the client's per-cell overhead (docs/guide/cluster.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.allocators import timers
from bench.experiments.cell import Cell
from bench.run.rounds import round_cells, round_count, round_order, spec_twins
from bench.spec import Spec
from bench.spec.models import AGAIN_SUFFIX

__all__ = [
    "CLUSTER_CELL_S",
    "CONTROL_START_S",
    "SERVICE_START_S",
    "CellPlan",
    "cluster_total",
    "idle_estimate",
    "plan_cells",
    "unit_seconds",
]

#: Seconds a service cell spends outside its phases: workers started and proven on their
#: allocator, the service stopped (about 1.5 s a cell in a quick run on 2 cores; rounded up).
SERVICE_START_S = 2.0
#: Seconds a control repeat spends outside its churn and rest (process start, one binary).
CONTROL_START_S = 0.5
#: Seconds a cluster cell adds (0.48 s a cell measured by benchmarks/cluster_overhead.py).
CLUSTER_CELL_S = 0.5


@dataclass(frozen=True)
class CellPlan:
    """One cell and its phases, in seconds, in the order they run."""

    cell: Cell
    phases: tuple[tuple[str, float], ...]

    @property
    def seconds(self) -> float:
        return sum(s for _, s in self.phases)


#: Seconds an idle that ends once settled runs past its least, for an allocator that is flat
#: by then: one settle window's samples, read every half second (6.3 s for a 6 s least here).
SETTLED_EXTRA_S = 0.5


def idle_estimate(spec: Spec, name: str) -> float:
    """The idle an allocator is expected to run: idle_s when fixed; when it ends once
    settled, its least idle (HORIZON_FACTOR times its return timers as the stock allocators
    read them back here, timers.KNOWN_HORIZON_S; a variant or an unknown allocator gets the
    most)."""
    s = spec.service_for(name)
    if s.idle_ends == "fixed":
        return s.idle_s
    base = name.removesuffix(AGAIN_SUFFIX)
    horizon = timers.KNOWN_HORIZON_S.get(base)
    if horizon is None:
        return s.idle_s
    least = max(s.idle_floor_s, timers.HORIZON_FACTOR * horizon)
    return min(s.idle_s, least + SETTLED_EXTRA_S)


def _phases(spec: Spec, cell: Cell) -> tuple[tuple[str, float], ...]:
    if cell.experiment == "service":
        s = spec.service_for(cell.allocator)
        return (
            ("start", SERVICE_START_S),
            ("warmup", s.warmup_s),
            ("load", s.load_s),
            ("idle", round(idle_estimate(spec, cell.allocator), 1)),
        )
    return (
        ("start", CONTROL_START_S),
        *((("warm-up", spec.control.warmup_s),) if spec.control.warmup_s else ()),
        ("churn", spec.control.seconds),
        ("rest", spec.control_idle_s),
    )


def plan_cells(
    spec: Spec,
    names: list[str] | None = None,
    *,
    skip_service: bool = False,
    skip_control: bool = False,
) -> list[CellPlan]:
    """Every cell in run order: round r holds repeat r of each allocator in the order of
    bench.run.rounds.round_order (rotated by r, the A/A duplicate at its drawn place)."""
    names = spec.allocator_names if names is None else names
    out = []
    for r in range(round_count(spec, skip_service=skip_service, skip_control=skip_control)):
        for name in _order(spec, names, r):
            for cell in round_cells(
                spec, name, r, skip_service=skip_service, skip_control=skip_control
            ):
                out.append(CellPlan(cell, _phases(spec, cell)))
    return out


def cluster_total(cells: list[CellPlan], hosts: int) -> float:
    """The estimated wall time on `hosts` hosts: each cell to the host that frees first."""
    if hosts < 1:
        raise ValueError("hosts must be 1 or more")
    free = [0.0] * hosts
    for c in cells:
        i = min(range(hosts), key=free.__getitem__)
        free[i] += c.seconds + CLUSTER_CELL_S
    return max(free, default=0.0)


def unit_seconds(
    spec: Spec,
    names: list[str],
    rounds: int,
    *,
    skip_service: bool,
    skip_control: bool,
    unavailable: frozenset[str] = frozenset(),
) -> list[float]:
    """The estimated seconds of each (round, allocator) step a local run counts, in order:
    what the live display sums for the whole run's time left. An allocator `unavailable`
    here is skipped in an instant: its steps count nothing."""
    return [
        0.0
        if name in unavailable
        else sum(
            CellPlan(cell, _phases(spec, cell)).seconds
            for cell in round_cells(
                spec, name, r, skip_service=skip_service, skip_control=skip_control
            )
        )
        for r in range(rounds)
        for name in _order(spec, names, r)
    ]


def _order(spec: Spec, names: list[str], r: int) -> list[str]:
    return round_order(names, r, twins=spec_twins(spec), seed=spec.service.churn.seed)
