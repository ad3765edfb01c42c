"""The workers' live sets and live heaps at ready, end of load and end of idle.

Each time the runner reads every worker's /stats (as it proves the allocator at ready, as idle
begins, after the last idle sample), this watcher (bench.experiments.watcher) keeps what the
workers report of the memory they use themselves: the synthetic service's live payload and
every program's own live heap (service.allocators.heap). The summary's live, heap and block
columns are their totals over the workers; the manifest keeps each reading per worker.
"""

from __future__ import annotations

from typing import Any

from bench.experiments.watcher import Contribution, Launch, Moment, Quiet, RepeatEnd

__all__ = ["LiveSetWatcher", "live_record"]

_LIVE_KEYS = (
    "churn_calls",
    "live_count",
    "live_bytes",
    "long_count",
    "short_count",
    "pss_anon_bytes",
    "interface",  # a hosted app's, as the worker detected it (asgi or wsgi)
)

#: What each worker's `heap` (service.allocators.heap) reports: the program's own live heap.
_HEAP_KEYS = ("malloc_in_use_bytes", "malloc_source", "python_blocks", "gc_objects", "gc_counts")

#: The readings, in the order the runner takes them.
_READINGS = ("ready", "load_end", "idle_end")


def _total(rows: list[dict[str, Any]], key: str) -> int | None:
    """The sum of one count over the workers; None unless every worker reported it (a sum
    over some of them would pass for the service's)."""
    values = [r.get(key) for r in rows]
    if not values or any(v is None for v in values):
        return None
    return int(sum(values))


def live_record(
    at: str, t_s: float, per_worker: dict[int, dict[str, Any]], repeat: int
) -> dict[str, Any]:
    """The workers' live sets and live heaps at one moment: per worker, and the totals.

    `live_bytes` is the synthetic service's live payload (None from a hosted app, which has
    none); `heap_bytes` and `py_blocks` are every program's own live heap (service.allocators.heap).
    """
    rows = [
        {
            "pid": pid,
            **{k: st.get(k) for k in _LIVE_KEYS},
            **{k: (st.get("heap") or {}).get(k) for k in _HEAP_KEYS},
        }
        for pid, st in per_worker.items()
    ]
    sources = {r["malloc_source"] for r in rows if r["malloc_source"]}
    return {
        "repeat": repeat,
        "at": at,
        "t_s": round(t_s, 3),
        "live_bytes": _total(rows, "live_bytes"),
        "heap_bytes": _total(rows, "malloc_in_use_bytes"),
        "heap_source": ", ".join(sorted(sources)) or None,
        "py_blocks": _total(rows, "python_blocks"),
        "workers": rows,
    }


class LiveSetWatcher(Quiet):
    """The live set and live heap at each /stats reading of one repeat."""

    def __init__(self, launch: Launch) -> None:
        self._launch = launch
        self.records: list[dict[str, Any]] = []

    def moment(self, m: Moment) -> None:
        if m.answers is not None and m.name in _READINGS:
            t_s = round(m.t - self._launch.origin, 6)  # the call's start, as its span records
            self.records.append(live_record(m.name, t_s, m.answers, self._launch.repeat))

    def finish(self, end: RepeatEnd) -> Contribution:
        live = {r["at"]: r["live_bytes"] for r in self.records}
        heap = {r["at"]: r.get("heap_bytes") for r in self.records}
        blocks = {r["at"]: r.get("py_blocks") for r in self.records}
        columns: dict[str, Any] = {
            "heap_source": next(
                (r["heap_source"] for r in self.records if r.get("heap_source")), None
            ),
        }
        for at in _READINGS:
            columns[f"{at}_live_bytes"] = live.get(at)
            columns[f"{at}_heap_bytes"] = heap.get(at)
            columns[f"{at}_py_blocks"] = blocks.get(at)
        return Contribution(
            columns=columns,
            records={
                "live_set": self.records,
                "per_worker": self.records[-1]["workers"] if self.records else [],
            },
        )
