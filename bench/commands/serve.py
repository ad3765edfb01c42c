"""`allocstudy serve`: run the service under one allocator until Ctrl-C.

The same launcher as a measured run: the spec's worker count, the allocator preloaded in the
supervisor and every worker, 127.0.0.1 only. Once ready it prints, for every worker, its pid
and the library that serves malloc there (from the worker's own /stats), and refuses to go on
if any worker is not on the allocator asked for. Every failure is one line on stderr.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from bench.allocators.registry import resolve_for_spec
from bench.spec import Spec
from service.launcher import LaunchError, start_service

__all__ = ["serve_command"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_PREFIX = "allocstudy serve:"


def _error(message: str) -> None:
    print(f"{_PREFIX} {message}", file=sys.stderr, flush=True)


def serve_command(spec: Spec, allocator_name: str, *, port: int) -> int:
    """Serve until SIGINT or SIGTERM; 0 after a clean stop, 1 on failure, 2 for a bad name."""
    try:
        alloc = resolve_for_spec(spec, allocator_name)
    except KeyError as exc:
        _error(str(exc.args[0]) if exc.args else f"unknown allocator {allocator_name!r}")
        return EXIT_USAGE
    if not alloc.available:
        fix = f" (fix: {alloc.fix})" if alloc.fix else ""
        _error(f"allocator {alloc.name} is not available here: {alloc.reason}{fix}")
        return EXIT_FAILED

    stop = threading.Event()
    serving = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        if not serving:  # still starting: abandon the start (start_service stops what it began)
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    service = None
    try:
        try:
            service = start_service(
                python=sys.executable,
                workers=spec.service.workers,
                port=port,
                env=alloc.preload_env(),
                service_config=spec.service.model_dump(mode="json"),
            )
            stats = service.stats_from_every_worker(timeout=15.0)
        except LaunchError as exc:
            _error(str(exc))
            return EXIT_FAILED
        expected = alloc.expected_library()
        for pid, worker in stats.items():
            version = worker.get("allocator_version") or "version unknown"
            print(f"worker {pid}: malloc from {worker['malloc_library']} ({version})", flush=True)
        wrong = {
            pid: worker["malloc_library"]
            for pid, worker in stats.items()
            if os.path.realpath(str(worker["malloc_library"])) != expected
        }
        if wrong:
            pid, library = next(iter(wrong.items()))
            ignored = [ln for ln in service.log_tail(40) if "cannot be preloaded" in ln]
            why = f" ({ignored[-1].strip()})" if ignored else ""
            _error(
                f"{len(wrong)} of {len(stats)} workers are not on {alloc.name}: worker {pid} "
                f"gets malloc from {library}, expected {expected}{why}"
            )
            return EXIT_FAILED
        serving = True
        print(
            f"serving {alloc.name} on {service.base_url} with {len(stats)} workers (Ctrl-C stops)",
            flush=True,
        )
        while not stop.wait(0.5):
            if service.poll() is not None:
                _error(f"the service stopped by itself (exit code {service.poll()})")
                return EXIT_FAILED
        return EXIT_OK
    except KeyboardInterrupt:
        _error("interrupted before the service was ready")
        return 130
    finally:
        if service is not None:
            service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
