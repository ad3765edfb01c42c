"""The one place where a service repeat's watchers are registered (bench.experiments.watcher).

Their order is the order of their flags, evidence and records: the memory group's first (its
deaths explain what follows), then recycling, the live set, the idle probes, retention, the
load's stages.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.experiments.idleprobes import IdleProbeWatcher
from bench.experiments.liveset import LiveSetWatcher
from bench.experiments.loadstages import LoadStageWatcher
from bench.experiments.oomkills import LimitWatcher
from bench.experiments.restarts import RestartWatcher
from bench.experiments.retention import RetentionWatcher
from bench.experiments.watcher import Launch, Watcher

__all__ = ["WATCHERS", "start_watchers"]

#: Every watcher of a service repeat, each made from the repeat's Launch.
WATCHERS: tuple[Callable[[Launch], Watcher], ...] = (
    LimitWatcher,
    RestartWatcher,
    LiveSetWatcher,
    IdleProbeWatcher,
    RetentionWatcher,
    LoadStageWatcher,
)


def start_watchers(launch: Launch) -> list[Watcher]:
    """The repeat's watchers, made in order (a watcher that cannot be made raises
    ExperimentError, and the repeat does not run)."""
    return [make(launch) for make in WATCHERS]
