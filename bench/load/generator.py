"""The open-loop load generator: its own process, one row per request, loopback only.

Open loop means every request is due at a time fixed before the run (t0 + i/rate within its
stage, see bench.load.schedule) and is sent then whatever earlier responses did; its latency counts
from that due time, so a slow service shows up as latency instead of as a lower offered rate
(no coordinated omission). One asyncio task per due request, an aiohttp connector without a
connection cap, and a safety valve on in-flight requests far above rate x timeout whose drops
are rows with error "overload", never silent. The idle stage's probes, a few a second, go over
one kept-alive connection per service worker in turn instead (bench.load.connections), so
that every worker gets its share; a request flow's steps share one connection of their own.

Three layers, processes at the edges:
- `LoadConfig` (validated, JSON on disk; bench.load.config), the pure plan (bench.load.schedule)
  and the pure `summarize` of a `Record` (bench.load.record);
- `LoadGenerator`, the asyncio engine that fills a columnar `Record`;
- `main` (``python -m bench.load.generator --config C.json --out requests.arrow``) for the
  process; the runner starts it through bench.load.handle.

It imports neither Arrow (only to write its rows, at the end) nor anything of the report, so
the process is quick to start.

The module is longer than most (about 680 lines) because `LoadGenerator` is one schedule: its
dispatch, sends, flows and progress share the due times, the in-flight set and the record,
and split across modules they would pass all of it back and forth.

Times in rows are seconds since `origin`, a time.monotonic() value the runner passes: the
clock is system-wide, so the runner's memory samples and these rows share one time axis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import random
import resource
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.errors import EXIT_OK, EXIT_USAGE
from bench.load.config import (
    EndpointCall,
    LoadConfig,
    LoadgenError,
    body_pools,
    load_config,
    request_variants,
)
from bench.load.connections import FlowLanes, WorkerPins
from bench.load.progressfile import LoadProgress, write_progress
from bench.load.record import LatencyHistogram, LoadSummary, Record, summarize
from bench.load.schedule import iter_endpoints, iter_slots, stage_starts
from bench.traffic.flows import extract, fill, fill_headers, missing_reason, save_path, uses_of
from bench.traffic.requestfile import HttpRequest
from bench.traffic.templates import compile_template
from service.churn import LIVE_BYTES_HEADER, WORKER_HEADER

__all__ = ["LoadGenerator", "main", "run_process", "write_rows"]

#: Seconds before the first probe stage the per-worker probe connections are opened, when that
#: stage starts later than this after t0 (before t0 otherwise). Opened at the start, they would
#: sit unused through the whole load, and the service closes a connection idle for 60 s
#: (uvicorn's timeout_keep_alive, service/supervisor.py): the probes would then reconnect to
#: workers the kernel picks, pinned to nothing.
PIN_LEAD_S = 5.0


def write_rows(path: Path, record: Record, origin: float, config: LoadConfig) -> None:
    """The `requests` table, written whole to a temporary name and renamed."""
    import pyarrow as pa  # late: the engine itself never needs Arrow

    from bench.results.tables import SCHEMAS, write_table

    columns = record.rows(origin, config.allocator, config.repeat)
    write_table(path, "requests", pa.Table.from_pydict(columns, schema=SCHEMAS["requests"]))


# ---------------------------------------------------------------------------------------------
# Probe connections pinned to workers


def _headers(call: EndpointCall, seed: str) -> dict[str, str] | None:
    """The headers of every request to an endpoint: its own, and its body's content type.

    A header's fields are rendered once, here (`${env:TOKEN}` read from this process's
    environment, never written anywhere; a random field drawn once, seeded by `seed`); a
    flow's `${var:...}` stays a marker until its step is sent (bench.traffic.flows)."""
    rng = random.Random(seed)
    headers = {k: compile_template(v).render(rng) for k, v in call.headers.items()}
    if call.content_type and not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = call.content_type
    return headers or None


def _cpu_seconds() -> float:
    """CPU time of this process, all threads, user and system (the kernel's loopback work
    is system time of the sender, so it counts)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class LoadGenerator:
    """Sends the plan of a `LoadConfig` open loop and fills a `Record`.

    The dispatcher sleeps until the next due time and then starts one task per request that is
    due (several when it woke late, so a late wake-up never shifts the schedule). Send
    lateness, sent_s - intended_s, is recorded for every request: asyncio rounds timers up to
    the millisecond, so it is never zero, and a summary reports how large it was.
    """

    def __init__(self, config: LoadConfig, pools: Mapping[str, Sequence[bytes]]) -> None:
        self.config = config
        self.stages = config.plan()
        self.endpoint_names = config.endpoint_names
        self.record = Record(
            self.endpoint_names,
            tuple(s.phase for s in self.stages),
            plan=tuple(self.stages),
            load_stages=tuple(s.load_stage for s in config.stages),
        )
        self.pools = {name: list(bodies) for name, bodies in pools.items()}
        self.variants = request_variants(config)  # a request file's, rendered before t0
        self.t0 = math.nan
        self.end = math.nan
        self.start_late_s = 0.0
        self.stopped_by: str | None = None
        self._winding = False  # finish(): the schedule ends early, in-flight requests complete
        self.cpu_s = 0.0
        self._cancel_reason = "cancelled"
        self.in_flight = 0
        self.sent = 0
        self.done = 0
        self.errors = 0
        self.latency = LatencyHistogram()
        self.lateness = LatencyHistogram()
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[Any] | None = None
        # the stages whose requests rotate over per-worker connections: those with a mix of
        # their own (the idle stage's probes), when the config asks for it
        self.pinned_stages = [
            config.probe_workers > 0 and stage.mix is not None for stage in self.stages
        ]
        self.pins = WorkerPins(config)
        self._pinning: asyncio.Task[None] | None = None  # opening them mid-schedule
        self.lanes = FlowLanes(config)
        # a flow's steps by the code of its first (the one the schedule draws), filled with
        # the rotations of every endpoint in _dispatch
        self._steps: dict[int, list[int]] = {}
        self._needs: dict[int, list[str]] = {}  # a later step's code: the values it uses
        self._uses: list[int] = []

    # -- control -------------------------------------------------------------------------------

    def finish(self) -> None:
        """End the schedule here (the runner's idle has ended once memory settled): no more
        sends, and the requests in flight are answered, not cancelled, so none counts as
        failed for being cut short."""
        self._winding = True

    def stop(self, reason: str) -> None:
        """Stop early (a signal): no more sends, in-flight requests cancelled, rows kept."""
        if self.stopped_by is None:
            self.stopped_by = reason
            if self._main is not None and not self._main.done():
                self._main.cancel()

    async def run(self) -> Record:
        """Run the whole plan (or until `stop`); every request that came due has a row."""
        import aiohttp

        self._main = asyncio.current_task()
        config = self.config
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
            timeout=aiohttp.ClientTimeout(total=config.timeout_s),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        progress: asyncio.Task[None] | None = None
        cpu_start = _cpu_seconds()
        try:
            start_at = config.start_at
            if config.start_on_stdin and self.stopped_by is None:
                start_at = await self._wait_for_go()
            if self.stopped_by is None:
                await self._warm_connections(session)
            pin_at = self._pin_offset()
            if pin_at is not None and pin_at <= 0 and self.stopped_by is None:
                await self.pins.open(config.probe_workers)
            now = time.monotonic()
            start_at = start_at if start_at is not None else now + 0.05
            self.t0 = self.record.t0 = max(start_at, now)
            self.start_late_s = self.t0 - start_at
            if pin_at is not None and pin_at > 0 and self.stopped_by is None:
                self._pinning = asyncio.create_task(self._pin_later(self.t0 + pin_at))
            progress = asyncio.create_task(self._progress_loop())
            cpu_start = _cpu_seconds()
            if self.stopped_by is None:
                await self._dispatch(session)
                deadline = self.t0 + config.planned_s + self._longest_s() + 1.0
                if self._tasks:
                    await asyncio.wait(set(self._tasks), timeout=deadline - time.monotonic())
        except asyncio.CancelledError:
            if self.stopped_by is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            if math.isnan(self.t0):  # stopped before the schedule began
                self.t0 = self.record.t0 = time.monotonic()
            self.end = time.monotonic()
            self.cpu_s = _cpu_seconds() - cpu_start
            if self.stopped_by is None:
                self._cancel_reason = "cancelled: still pending at the hard stop"
            await self._cancel_in_flight()
            self.record.close_pending(self._cancel_reason)
            if progress is not None:
                progress.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await progress
            self._write_progress(finished=True)
            if self._pinning is not None:
                self._pinning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pinning
            await self.pins.close()
            await self.lanes.close()
            await session.close()
        return self.record

    def _longest_s(self) -> float:
        """The longest a request, or a flow of several, started last may take: its timeout
        for each step, and each step's pause."""
        requests = {r.name: r for r in self.config.requests or []}
        longest = 1
        pauses = 0.0
        for flow in {r.flow for r in requests.values() if r.flow}:
            steps = [r for r in requests.values() if r.flow == flow]
            longest = max(longest, len(steps))
            pauses = max(pauses, sum(r.pause_s for r in steps))
        return longest * self.config.timeout_s + pauses

    def _pin_offset(self) -> float | None:
        """When, in s after t0, to open the per-worker probe connections (at or below 0:
        before t0); None when no stage's requests are pinned."""
        if not any(self.pinned_stages):
            return None
        first = self.pinned_stages.index(True)
        return stage_starts(self.stages)[first] - PIN_LEAD_S

    async def _pin_later(self, at: float) -> None:
        """Open the per-worker probe connections at `at` (a time.monotonic() value)."""
        while (delay := at - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        await self.pins.open(self.config.probe_workers)

    async def _wait_for_go(self) -> float | None:
        """t0 from the first line on stdin; an empty stdin (closed) stops the run unstarted."""
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        try:
            return float(line)
        except ValueError:
            self.stop("no go on stdin")
            return None

    async def _cancel_in_flight(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- sending -------------------------------------------------------------------------------

    async def _warm_connections(self, session: Any) -> None:
        """Open `warm_connections` keep-alive connections before t0 with concurrent GETs of
        the probe path (`health_path`: a hosted app's harness path, not one of its routes).

        aiohttp reuses idle connections first in, first out, so requests spread evenly over
        every open connection; the service's workers each serve the connections they
        accepted. Opening many before the schedule spreads them over every worker.
        """
        n = self.config.warm_connections
        if n <= 0:
            return

        async def one() -> None:
            async with session.get(self.config.base_url + self.config.health_path) as response:
                await response.read()

        results = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            print(f"loadgen: {len(failed)} of {n} warm-up connections failed", file=sys.stderr)

    async def _dispatch(self, session: Any) -> None:
        from yarl import URL

        config, record = self.config, self.record
        loop = asyncio.get_running_loop()
        monotonic = time.monotonic
        base = config.base_url
        codes = {name: code for code, name in enumerate(self.endpoint_names)}
        known = config.calls()
        calls = [known[name] for name in self.endpoint_names]
        headers = [
            _headers(call, f"{config.payload.seed}:{name}:headers")
            for name, call in zip(self.endpoint_names, calls, strict=True)
        ]
        # every endpoint as a rotation of (URL, body): a request file's rendered variants, or
        # the fixed path with the built-in body pool (None: no body)
        pools: list[list[tuple[Any, bytes | None]]] = []
        for name, call in zip(self.endpoint_names, calls, strict=True):
            if name in self.variants:
                pools.append([(URL(base + p), b) for p, b in self.variants[name]])
            else:
                url = URL(base + call.path)
                pools.append([(url, b) for b in self.pools.get(name) or [None]])
        uses = self._uses = [0] * len(calls)
        requests = {r.name: r for r in config.requests or []}
        for code, name in enumerate(self.endpoint_names):
            first = requests.get(name)
            if first is not None and first.flow is not None and first.step == 1:
                later = sorted(
                    (r for r in requests.values() if r.flow == first.flow and r.step > 1),
                    key=lambda r: r.step,
                )
                self._steps[code] = [codes[r.name] for r in later]
                for r in later:  # the values each later step needs, found once
                    self._needs[codes[r.name]] = list(dict.fromkeys(uses_of(r.model_dump())))
        # one seeded sequence per distinct mix: the load's sequence is the same whether or not
        # an idle stage with a mix of its own follows it
        sequences = [
            iter_endpoints(config.mix, config.seed)
            if stage.mix is None
            else iter_endpoints(stage.mix, config.seed + 1_000_003 * (index + 1))
            for index, stage in enumerate(self.stages)
        ]
        cap, t0 = config.in_flight_cap, self.t0
        behind = 0
        pinned = self.pinned_stages

        for stage, offset in iter_slots(self.stages, config.seed):
            if pinned[stage] and self._pinning is not None:
                # its connections are opened PIN_LEAD_S ahead; should that take longer (a
                # service slow to answer), the probes wait, and their send lateness says so
                await self._pinning
                self._pinning = None
            due = t0 + offset
            if due > monotonic():
                behind = 0
                while (delay := due - monotonic()) > 0:  # a timer may fire early (uvloop's
                    await asyncio.sleep(delay)  # clock counts ms); never send before due
            else:
                behind += 1
                if behind % 64 == 0:  # far behind: let the started requests go out
                    await asyncio.sleep(0)
            if self._winding:
                break  # finish(): nothing more is due
            code = codes[next(sequences[stage])]
            i = record.add(stage, code, offset)
            if self.in_flight >= cap:
                record.finish(i, 0, "overload", monotonic())
                self.errors += 1
                continue
            pool = pools[code]
            url, body = pool[uses[code] % len(pool)]
            uses[code] += 1
            self.in_flight += 1
            via = self.pins.next() if pinned[stage] and self.pins.sessions else session
            if code in self._steps:  # a flow: its first step now, the others after it
                step = self._flow(stage, i, code, url, body, calls, headers, requests)
                task = loop.create_task(step)
            else:
                task = loop.create_task(
                    self._send(via, i, calls[code].method, url, headers[code], body)
                )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(
        self,
        session: Any,
        i: int,
        method: str,
        url: Any,
        headers: dict[str, str] | None,
        body: bytes | None,
    ) -> tuple[int, str | None, bytes]:
        """One request: sent_s when it starts (before connection set-up), done_s at the end
        of the response body, or a transport error as status 0. Its status, error and the
        answer's body (what a flow's step saves values from)."""
        import aiohttp

        record = self.record
        sent = time.monotonic()
        record.sent[i] = sent
        self.sent += 1
        self.lateness.add(sent - record.intended(i))
        status, error, answer = 0, None, b""
        try:
            async with session.request(method, url, data=body, headers=headers) as response:
                answer = await response.read()
                status = response.status
                if status >= 400:
                    error = f"HTTP {status}: {response.reason}"
                # which worker answered, and the live payload it holds (a hosted app names
                # only its worker)
                worker = response.headers.get(WORKER_HEADER)
                if worker is not None:
                    live = response.headers.get(LIVE_BYTES_HEADER)
                    with contextlib.suppress(ValueError):
                        record.report(i, int(worker), -1 if live is None else int(live))
        except asyncio.CancelledError:
            self.in_flight -= 1
            record.finish(i, 0, self._cancel_reason)
            raise
        except TimeoutError:
            error = f"timeout: no response within {self.config.timeout_s:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        done = time.monotonic()
        self.in_flight -= 1
        self.done += 1
        record.finish(i, status, error, done)
        if error is None:
            self.latency.add(done - record.intended(i))
        else:
            self.errors += 1
        return status, error, answer

    async def _flow(
        self,
        stage: int,
        first: int,
        code: int,
        url: Any,
        body: bytes | None,
        calls: Sequence[EndpointCall],
        headers: Sequence[dict[str, str] | None],
        requests: Mapping[str, HttpRequest],
    ) -> None:
        """A flow, its first step due at row `first` (its slot), the others each due when
        the previous answer came (and its pause passed), all over one lane.

        Each step is a row of its own: due, sent and answered at its own times, so its
        latency is its own. A value a step saves is read from its JSON answer; a step that
        needs a value that is missing (the step that saves it failed, or its answer had
        nothing there) is not sent: its row is failed with the reason.
        """
        from yarl import URL

        record, names = self.record, self.endpoint_names
        saved: dict[str, Any] = {}
        why: dict[str, str] = {}  # a var not saved: what went wrong
        lane = self.lanes.take()
        try:
            row = first
            for step_code in [code, *self._steps[code]]:
                request = requests[names[step_code]]
                if step_code != code:
                    if request.pause_s > 0:
                        await asyncio.sleep(request.pause_s)
                    row = record.add(stage, step_code, time.monotonic() - self.t0)
                    rotation = self.variants[request.name]  # rendered, markers left in
                    path, body = rotation[self._uses[step_code] % len(rotation)]
                    self._uses[step_code] += 1
                    lacking = [v for v in self._needs[step_code] if v not in saved]
                    if lacking:
                        record.finish(
                            row,
                            0,
                            missing_reason(lacking[0], why.get(lacking[0])),
                            time.monotonic(),
                        )
                        self.done += 1
                        self.errors += 1
                        continue
                    path, body = fill(path, body, request.body_kind, saved)
                    sent_headers = fill_headers(headers[step_code], saved) or None
                    url = URL(self.config.base_url + path)
                    self.in_flight += 1
                else:
                    sent_headers = headers[step_code]
                status, error, answer = await self._send(
                    lane, row, calls[step_code].method, url, sent_headers, body
                )
                self._save(request, status, error, answer, saved, why)
        finally:
            self.lanes.give(lane)

    @staticmethod
    def _save(
        request: HttpRequest,
        status: int,
        error: str | None,
        answer: bytes,
        saved: dict[str, Any],
        why: dict[str, str],
    ) -> None:
        """Keep what a step saves from its answer; or, for each value, why it could not."""
        if not request.save:
            return
        document: Any = None
        failed = f"step {request.step} failed: {error}" if error is not None else None
        if failed is None:
            try:
                document = json.loads(answer)
            except ValueError:
                failed = f"step {request.step} answered HTTP {status} without JSON"
        for var, path in request.save.items():
            saved.pop(var, None)
            if failed is not None:
                why[var] = failed
                continue
            try:
                saved[var] = extract(document, save_path(path))
            except KeyError as exc:
                why[var] = f"step {request.step}: {exc.args[0]}"

    # -- progress ------------------------------------------------------------------------------

    async def _progress_loop(self) -> None:
        path, interval = self.config.progress_path, self.config.progress_interval_s
        if path is None:
            return
        last_done, last_t = 0, time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            rate = (self.done - last_done) / (now - last_t) if now > last_t else 0.0
            last_done, last_t = self.done, now
            self._write_progress(rate=rate)

    def _write_progress(self, *, rate: float = 0.0, finished: bool = False) -> None:
        path = self.config.progress_path
        if path is None:
            return
        origin = self.config.origin if self.config.origin is not None else self.t0
        now = time.monotonic()
        phase = None
        if self.record.stage:
            phase = self.record.phases[self.record.stage[-1]]
        p99 = self.latency.quantile(0.99)
        late = self.lateness.quantile(0.99)
        progress = LoadProgress(
            t_s=now - origin,
            phase=phase,
            due=len(self.record),
            sent=self.sent,
            done=self.done,
            errors=self.errors,
            in_flight=self.in_flight,
            rate_rps=rate,
            p99_ms=None if p99 is None else p99 * 1000,
            late_p99_ms=None if late is None else late * 1000,
            finished=finished,
        )
        with contextlib.suppress(OSError):
            write_progress(path, progress)


# ---------------------------------------------------------------------------------------------
# The process: python -m bench.load.generator --config C.json --out requests.arrow


def _pin(cpus: Sequence[int] | None) -> list[int]:
    """Pin this process to `cpus` (all threads started later inherit it); the CPUs it runs on."""
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            allowed = sorted(os.sched_getaffinity(0))
            raise LoadgenError(
                f"cannot pin to CPUs {list(cpus)} (allowed: {allowed}): {exc}"
            ) from None
    return sorted(os.sched_getaffinity(0))


def _raise_fd_limit(wanted: int) -> None:
    """Allow as many sockets as the in-flight cap, so a slow service hits the cap, not EMFILE."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def _loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def run_process(config: LoadConfig, out: Path) -> LoadSummary:
    """The body of the process: pin, prepare, run, write rows, summarize. Signals stop it."""
    cpus = _pin(config.cpus)
    _raise_fd_limit(config.in_flight_cap + 256)
    pools = body_pools(config)
    generator = LoadGenerator(config, pools)
    early: list[str] = []

    def early_stop(signum: int, _frame: Any) -> None:
        early.append(signal.Signals(signum).name)

    # SIGHUP too: a lost terminal hangs up the runner's whole process group, this process
    # included, and the runner keeps the rows of an interrupted repeat; unless it is ignored
    # (the runner was started with nohup, asking to outlive its terminal).
    stops = [signal.SIGTERM, signal.SIGINT]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        stops.append(signal.SIGHUP)
    for sig in stops:
        signal.signal(sig, early_stop)
    # SIGUSR1: the runner's idle ended once memory settled (finish); never the default
    # action, which would kill the generator and lose its rows
    signal.signal(signal.SIGUSR1, lambda _s, _f: early.append("finish"))
    gc.collect()
    gc.freeze()  # set-up objects never need scanning again: shorter collections mid-run

    async def go() -> Record:
        loop = asyncio.get_running_loop()
        for sig in stops:
            loop.add_signal_handler(sig, generator.stop, sig.name)
        loop.add_signal_handler(signal.SIGUSR1, generator.finish)
        if "finish" in early:
            generator.finish()
        if stopped := [e for e in early if e != "finish"]:
            generator.stop(stopped[0])
        return await generator.run()

    try:
        with asyncio.Runner(loop_factory=_loop_factory(config.loop)) as runner:
            try:
                record = runner.run(go())
            finally:
                # Done, or stopping already: a further stop (the runner's SIGTERM after a
                # hang-up that reached us both) waits, blocked, and dies with the process.
                # Blocked while the loop's handlers still stand: closing, the loop puts the
                # killing default actions back, and so does the interpreter as it shuts
                # down, both while the rows may still be on their way out.
                signal.pthread_sigmask(signal.SIG_BLOCK, {*stops, signal.SIGUSR1})
    finally:
        origin = config.origin if config.origin is not None else generator.t0
        if not math.isnan(origin):
            write_rows(out, generator.record, origin, config)
    summary = summarize(
        record,
        generator.stages,
        end=generator.end,
        origin=origin,
        cpu_s=generator.cpu_s,
        start_late_s=generator.start_late_s,
        stopped_by=generator.stopped_by,
        loop=config.loop,
        cpus=cpus,
        probe_workers_pinned=len(generator.pins),
    )
    return summary.model_copy(update={"out": str(out)})


def _human(summary: LoadSummary) -> str:
    rates = ", ".join(
        f"{s.phase} {s.achieved_rps:.1f}/{s.rate:g} req/s"
        if s.achieved_rps is not None
        else s.phase
        for s in summary.stages
    )
    late = "n/a" if summary.late_ms_p99 is None else f"{summary.late_ms_p99:.2f} ms"
    stop = f", stopped by {summary.stopped_by}" if summary.stopped_by else ""
    pinned = summary.probe_workers_pinned
    probes = f"; idle probes rotate over {pinned} workers" if pinned else ""
    return (
        f"loadgen: {summary.requests} due, {summary.sent} sent, {summary.ok} ok, "
        f"{summary.errors} errors; {rates}; send lateness p99 {late}{probes}; "
        f"CPU {summary.cpu_pct:.1f}% of a core{stop}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the load-generator process; prints the summary as JSON on stdout.

    Exits EXIT_OK, or EXIT_USAGE for a bad config or CPUs that cannot be had (one line on
    stderr); an unexpected error exits 1 with Python's traceback.
    """
    parser = argparse.ArgumentParser(
        prog="python -m bench.load.generator",
        description="Open-loop load generator (loopback only).",
    )
    parser.add_argument("--config", type=Path, required=True, help="LoadConfig as JSON")
    parser.add_argument("--out", type=Path, required=True, help="the requests table to write")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        summary = run_process(config, args.out)
    except LoadgenError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(summary.model_dump_json(), flush=True)
    print(_human(summary), file=sys.stderr, flush=True)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
