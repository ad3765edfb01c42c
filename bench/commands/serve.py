"""`allocstudy serve`: run the service under one allocator until Ctrl-C.

The same launcher as a measured run: the spec's worker count, the allocator preloaded in the
supervisor and every worker, 127.0.0.1 only. Once ready it prints, for every worker, its pid
and the library that serves malloc there (from the worker's own /stats), and refuses to go on
if any worker is not on the allocator asked for. Every failure is a ServeError, one line on
stderr (`allocstudy serve: ...`, printed by bench.cli), exit code 3; an unknown allocator is
exit code 2.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

from bench.allocators.registry import resolve_for_spec
from bench.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from bench.spec import Spec
from service.launcher import LaunchError, start_service

__all__ = ["ServeError", "serve_command"]


class ServeError(UserError):
    """The service could not be served as asked; one line, said by `allocstudy serve`."""

    speaker = "allocstudy serve"


def serve_command(spec: Spec, allocator_name: str, *, port: int) -> int:
    """Serve until SIGINT or SIGTERM and return 0; raise ServeError when it cannot."""
    try:
        alloc = resolve_for_spec(spec, allocator_name)
    except KeyError as exc:
        message = str(exc.args[0]) if exc.args else f"unknown allocator {allocator_name!r}"
        raise ServeError(message, exit_code=EXIT_USAGE) from None
    if not alloc.available:
        fix = f" (fix: {alloc.fix})" if alloc.fix else ""
        raise ServeError(f"allocator {alloc.name} is not available here: {alloc.reason}{fix}")

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
            section = spec.service_for(alloc.name)  # with the allocator's own recycling
            service = start_service(
                python=sys.executable,
                workers=section.workers,
                port=port,
                env=alloc.preload_env(),
                service_config=section.model_dump(mode="json"),
            )
            stats = service.stats_from_every_worker(timeout=15.0)
        except LaunchError as exc:
            raise ServeError(str(exc)) from None
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
            raise ServeError(
                f"{len(wrong)} of {len(stats)} workers are not on {alloc.name}: worker {pid} "
                f"gets malloc from {library}, expected {expected}{why}"
            )
        serving = True
        print(
            f"serving {alloc.name} on {service.base_url} with {len(stats)} workers (Ctrl-C stops)",
            flush=True,
        )
        while not stop.wait(0.5):
            if service.poll() is not None:
                raise ServeError(f"the service stopped by itself (exit code {service.poll()})")
        return EXIT_OK
    except KeyboardInterrupt:
        raise ServeError(
            "interrupted before the service was ready", exit_code=EXIT_INTERRUPTED
        ) from None
    finally:
        if service is not None:
            service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
