"""The load generator's kept-alive connections: one per service worker, and flow lanes.

`WorkerPins` opens connections until each reaches a different worker (the kernel hands a new
connection to whichever worker accepts first), so the idle stage's probes reach every worker
in turn; `FlowLanes` lends one connection to each request flow in flight, so a flow's steps
reach the worker that holds what its first step made. Both are the generator's
(bench.load.generator); aiohttp is imported when they open, so the process starts quickly.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from bench.load.config import LoadConfig
from service.churn import WORKER_HEADER

__all__ = ["PIN_ATTEMPTS_PER_WORKER", "FlowLanes", "WorkerPins"]

#: Connection attempts per worker before `WorkerPins` gives up on the workers it has not reached:
#: each new connection lands on a worker the kernel picks, so covering n workers takes about
#: n x (1 + 1/2 + ... + 1/n) attempts on average (8 for 4 workers, 37 for 12); 30 x n miss one
#: with a chance of n x (1 - 1/n)^(30 n) at most, about n x e^-30: below 1e-11 to 100 workers.
PIN_ATTEMPTS_PER_WORKER = 30


class WorkerPins:
    """One kept-alive connection per service worker, for the probes of the idle stage.

    Why: the service's workers each accept connections on their own SO_REUSEPORT socket and
    serve only those, so the connection a request goes over decides its worker. The shared
    pool hands out idle connections first in, first out, and they come back in bursts by
    worker (a worker answers the requests it holds one after another); a slow sequential
    stream, a few probes a second, walks through one worker's connections and reaches no other
    (measured: 14 of 14 idle probes on one of 4 workers). The synthetic service frees a
    worker's expired buffers at its next request, so the other workers would never free
    anything while idle. Here every worker gets its own connection, and the probes take them
    in turn, as an orchestrator probing each replica would: each worker sees rate / n probes a
    second.

    Each connection is a ClientSession of its own with a one-connection connector, so it never
    opens a second connection to some other worker. New connections are opened until `wanted`
    distinct workers (their X-Worker-Pid) are covered, duplicates closed, at most
    `PIN_ATTEMPTS_PER_WORKER` x `wanted` attempts; a worker not reached is said on stderr and
    the probes rotate over those that were. A pinned connection the service closes (its
    worker recycled or killed, a failed request, or more than 60 s between two of its probes)
    is reopened by aiohttp on its next probe, to whichever worker the kernel picks then: the
    rotation goes on, and the `worker` column of the rows shows where each probe went.
    """

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.sessions: list[Any] = []  # one per worker reached, in the order reached
        self.pids: list[int] = []
        self._opened: list[Any] = []  # every session not closed yet, for `close`
        self._turn = 0

    def __len__(self) -> int:
        return len(self.sessions)

    def _session(self) -> Any:
        import aiohttp

        config = self.config
        session = aiohttp.ClientSession(
            # the client would drop an idle connection after 15 s by default: keep it the
            # whole run (the service's own keep-alive timeout still applies, see the class)
            connector=aiohttp.TCPConnector(
                limit=1, keepalive_timeout=config.planned_s + config.timeout_s + 60.0
            ),
            timeout=aiohttp.ClientTimeout(total=config.timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._opened.append(session)
        return session

    async def _worker_of(self, session: Any) -> int | None:
        """The pid of the worker that answers a probe over `session`; None: no answer, an
        error status, or an answer that does not name its worker."""
        import aiohttp

        url = self.config.base_url + self.config.health_path
        try:
            async with session.get(url) as response:
                await response.read()
                if response.status >= 400:
                    return None
                return int(response.headers[WORKER_HEADER])
        except (aiohttp.ClientError, OSError, TimeoutError, KeyError, ValueError):
            return None

    async def _discard(self, session: Any) -> None:
        self._opened.remove(session)
        await session.close()

    async def open(self, wanted: int) -> None:
        """Open connections until `wanted` distinct workers hold one (see the class).

        Opened `wanted - reached` at a time, concurrently. A round in which no attempt got an
        answer ends it early: a service that does not answer, or answers without naming its
        worker, would not start doing so for more attempts.
        """
        budget = PIN_ATTEMPTS_PER_WORKER * wanted
        while len(self.sessions) < wanted and budget > 0:
            batch = [self._session() for _ in range(min(wanted - len(self.sessions), budget))]
            budget -= len(batch)
            pids = await asyncio.gather(*(self._worker_of(s) for s in batch))
            for session, pid in zip(batch, pids, strict=True):
                if pid is None or pid in self.pids:
                    await self._discard(session)
                else:
                    self.sessions.append(session)
                    self.pids.append(pid)
            if all(pid is None for pid in pids):
                break
        if len(self.sessions) < wanted:
            fallback = "" if self.sessions else "; they share the load's connections instead"
            print(
                f"loadgen: idle probes pinned to {len(self.sessions)} of {wanted} workers: "
                f"no connection reached the others within {PIN_ATTEMPTS_PER_WORKER * wanted} "
                f"attempts{fallback}",
                file=sys.stderr,
            )

    def next(self) -> Any:
        """The session of the next worker in turn."""
        session = self.sessions[self._turn % len(self.sessions)]
        self._turn += 1
        return session

    async def close(self) -> None:
        """Close every session opened (pinned or still being tried)."""
        opened, self._opened = self._opened, []
        for session in opened:
            await session.close()


class FlowLanes:
    """One kept-alive connection per flow under way, so that all the steps of a flow reach
    the same service worker, as one browser's session over its connection would.

    Why: each worker serves the connections it accepted, and an app that keeps state in its
    process (the example notes app) knows a note only in the worker that created it; over
    the shared pool, a flow's read would reach another worker half the time and fail with a
    404 no real client would see. A lane is a ClientSession with a one-connection connector;
    a flow takes a free lane (or opens one) for its whole run and gives it back at its end,
    so there are as many lanes as flows ever ran at once. Should the service close a lane's
    connection between two steps, aiohttp opens another to whichever worker the kernel
    picks, and the step's answer says what happened.
    """

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.free: list[Any] = []
        self.opened: list[Any] = []

    def take(self) -> Any:
        """A free lane, or a new one."""
        if self.free:
            return self.free.pop()
        import aiohttp

        lane = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=1, keepalive_timeout=self.config.planned_s + self.config.timeout_s + 60.0
            ),
            timeout=aiohttp.ClientTimeout(total=self.config.timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.opened.append(lane)
        return lane

    def give(self, lane: Any) -> None:
        """A flow is done with its lane: the next flow reuses it."""
        self.free.append(lane)

    async def close(self) -> None:
        opened, self.opened, self.free = self.opened, [], []
        for lane in opened:
            await lane.close()


# ---------------------------------------------------------------------------------------------
# The engine
