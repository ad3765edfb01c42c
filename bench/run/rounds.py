"""The plan of a run: its rounds, the rotated order of each, and the cells each holds.

Round r runs repeat r of every allocator (its service repeat, then its control repeat), the
allocators in an order rotated by r, so that no allocator always runs first on a cold machine
or last on a warm one; the A/A duplicate is placed at a drawn spot (`round_order`). A local
run takes the cells one after another in this order; a cluster run submits them all at once
in this order of priority. Pure functions of the spec: `allocstudy plan` reads them too.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from bench.experiments.cell import Cell
from bench.spec import Spec

__all__ = [
    "Round",
    "plan_rounds",
    "rotated",
    "round_cells",
    "round_count",
    "round_order",
    "spec_twins",
]


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


def round_count(spec: Spec, *, skip_service: bool, skip_control: bool) -> int:
    """How many rounds: the larger of the service and the control repeat counts (at least 1,
    so that an allocator with nothing to run is still verified)."""
    counts = [1]
    if not skip_service:
        counts.append(spec.repeats)
    if not skip_control and spec.control.enabled:
        counts.append(spec.control.repeats)
    return max(counts)


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


@dataclass(frozen=True)
class Round:
    """One round: its index, its allocators in order, and its cells in order."""

    index: int
    allocators: list[str]
    cells: list[Cell]


def plan_rounds(
    spec: Spec, names: list[str], *, kinds: int = 1, skip_service: bool, skip_control: bool
) -> list[Round]:
    """Every round of a run over `names`; with several host `kinds` (a cluster run's spec
    `hosts:`) each round holds its cells once per kind, kind by kind."""
    rounds = []
    for r in range(round_count(spec, skip_service=skip_service, skip_control=skip_control)):
        order = round_order(names, r, twins=spec_twins(spec), seed=spec.service.churn.seed)
        cells = [
            replace(cell, kind=kind)
            for kind in range(kinds)
            for name in order
            for cell in round_cells(
                spec, name, r, skip_service=skip_service, skip_control=skip_control
            )
        ]
        rounds.append(Round(r, order, cells))
    return rounds
