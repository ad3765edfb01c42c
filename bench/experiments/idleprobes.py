"""Whether the idle's health probes reached every worker (a watcher of the service repeat).

With `service.idle_rate` above 0 the idle is not silent: the load generator sends /health
probes, as a deployment's would, and pins each of its connections to a worker. A worker the
probes never reach idles in silence, so an allocator that frees expired buffers only when
called keeps them there; the repeat is flagged when the probes reached only some workers.
"""

from __future__ import annotations

from bench.experiments.watcher import Contribution, Launch, Quiet, RepeatEnd

__all__ = ["IdleProbeWatcher"]


class IdleProbeWatcher(Quiet):
    """Flags a repeat whose idle probes reached fewer workers than the service has."""

    def __init__(self, launch: Launch) -> None:
        self._service = launch.service

    def finish(self, end: RepeatEnd) -> Contribution:
        s = self._service
        pinned = end.loadgen.probe_workers_pinned
        idle = end.log.span("idle")
        if end.fault is None and idle and s.idle_rate > 0 and s.idle_s > 0 and pinned < s.workers:
            # the idle probes reached only some workers: the others' expired buffers stayed
            return Contribution(flags=[f"the idle probes reached {pinned} of {s.workers} workers"])
        return Contribution()
