"""Worker recycling: each worker retires after its own number of requests, and is replaced.

Operators bound a leaking or fragmenting Python service by restarting its workers every so
many requests: gunicorn's `max_requests` with `max_requests_jitter`, uvicorn's
`limit_max_requests`. The jitter gives each worker its own limit, drawn uniformly from
N..N+jitter, so that workers started together do not all restart together. Here the draw is
seeded (the churn seed, the worker's socket slot and how many workers that slot has had), so a
run recycles at the same counts every time it is repeated.

A recycled worker stops as uvicorn does at its limit: it stops accepting, lets the requests in
flight finish, runs the app's shutdown and exits with code 0. The supervisor starts the
replacement on the same socket; the replacement inherits the supervisor's environment (the
preloaded allocator), cgroup and cores, and starts its live set afresh, as a restarted worker
does. Exit code 0 after a limit is what tells a recycle from a death (a signal, the OOM killer)
in the supervisor.

Each restart is written to the service's log by the three processes that each know a part of
it, as one line after service.supervisor's message prefix:
- `worker-retired {pid, requests, limit, at}`: the old worker, once it has finished (requests
  it served, its drawn limit, when it stopped accepting: time.monotonic());
- `worker-recycled {pid, new_pid, exitcode, noticed}`: the supervisor, on replacing it;
- `worker-ready {pid, at, malloc_library}`: every worker of a recycling service once it serves,
  with the library that serves its malloc (dladdr), the proof that a replacement is on the
  allocator too.
`restarts()` joins them into one Restart per replacement. Only the standard library is
imported: the launcher and the runner read these lines without uvicorn.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass

__all__ = [
    "READY_TAG",
    "RECYCLED_TAG",
    "RETIRED_TAG",
    "Event",
    "Ready",
    "Recycled",
    "Restart",
    "Retired",
    "event_line",
    "parse_event",
    "request_limit",
    "restarts",
]

RETIRED_TAG = "worker-retired"
RECYCLED_TAG = "worker-recycled"
READY_TAG = "worker-ready"


def request_limit(
    max_requests: int | None, jitter: int, *, seed: int, slot: int, generation: int
) -> int | None:
    """The number of requests after which one worker retires (None: it never does).

    Uniform over max_requests..max_requests + jitter inclusive, as gunicorn and uvicorn draw
    it, from a stream of its own per seed, socket slot and generation (0 for the first
    worker of a slot, 1 for its first replacement...): reproducible, yet each worker differs.
    """
    if max_requests is None:
        return None
    if jitter <= 0:
        return max_requests
    rng = random.Random(f"allocstudy-recycle:{seed}:{slot}:{generation}")
    return max_requests + rng.randint(0, jitter)


@dataclass(frozen=True)
class Retired:
    """A worker that reached its limit and finished: written by the worker itself."""

    pid: int
    requests: int
    limit: int
    #: time.monotonic() when it stopped accepting (uvicorn checks its count 10 times a second)
    at: float


@dataclass(frozen=True)
class Recycled:
    """A worker that exited with code 0 after its limit, and its replacement's pid."""

    pid: int
    new_pid: int
    exitcode: int | None
    #: time.monotonic() when the supervisor noticed the exit (it looks every half second)
    noticed: float


@dataclass(frozen=True)
class Ready:
    """A worker of a recycling service that serves, and the library serving its malloc."""

    pid: int
    at: float
    malloc_library: str | None


Event = Retired | Recycled | Ready
_TAGS: dict[str, type[Event]] = {RETIRED_TAG: Retired, RECYCLED_TAG: Recycled, READY_TAG: Ready}
_TAG_OF = {cls: tag for tag, cls in _TAGS.items()}


def event_line(event: Event) -> str:
    """The log line of an event (without the supervisor's prefix)."""
    return f"{_TAG_OF[type(event)]} {json.dumps(asdict(event), sort_keys=True)}"


def parse_event(text: str) -> Event | None:
    """The event a log line (prefix removed) holds; None for any other or a damaged line."""
    tag, _, rest = text.strip().partition(" ")
    cls = _TAGS.get(tag)
    if cls is None:
        return None
    try:
        data = json.loads(rest)
        if cls is Retired:
            return Retired(
                int(data["pid"]), int(data["requests"]), int(data["limit"]), float(data["at"])
            )
        if cls is Recycled:
            code = data.get("exitcode")
            return Recycled(
                int(data["pid"]),
                int(data["new_pid"]),
                None if code is None else int(code),
                float(data["noticed"]),
            )
        library = data.get("malloc_library")
        return Ready(int(data["pid"]), float(data["at"]), None if library is None else str(library))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True)
class Restart:
    """One recycled worker and its replacement, as the three lines of the log tell it.

    Times are time.monotonic() values; a part whose line is missing (the replacement was
    still starting when the service stopped) is None.
    """

    old_pid: int
    new_pid: int
    #: requests the old worker served, and the limit it had drawn
    requests: int | None
    limit: int | None
    #: when the old worker stopped accepting (else when the supervisor noticed its exit)
    stopped: float
    noticed: float
    #: when the replacement served, and the library serving its malloc
    ready: float | None
    malloc_library: str | None


def restarts(events: Iterable[Event]) -> list[Restart]:
    """Every replacement of a recycled worker, in the order the supervisor made them."""
    events = list(events)
    retired = {e.pid: e for e in events if isinstance(e, Retired)}
    ready = {e.pid: e for e in events if isinstance(e, Ready)}
    out = []
    for e in events:
        if not isinstance(e, Recycled):
            continue
        gone, new = retired.get(e.pid), ready.get(e.new_pid)
        out.append(
            Restart(
                old_pid=e.pid,
                new_pid=e.new_pid,
                requests=gone.requests if gone else None,
                limit=gone.limit if gone else None,
                stopped=gone.at if gone else e.noticed,
                noticed=e.noticed,
                ready=new.at if new else None,
                malloc_library=new.malloc_library if new else None,
            )
        )
    return out
