"""Proof that an allocator is loaded: ask the process itself which library serves malloc.

ld.so ignores a failed preload with only a warning, so nothing short of asking is proof.
`verify` starts the real interpreter with the preload and asks, through dladdr(malloc)
(`python -m service.allocators.probe`), which library serves malloc, and has it read back the
settings a variant's environment asks for (bench.allocators.knobs): a variant whose settings
do not read back as asked fails here, before it is measured. `library_mapped` checks a
running process's memory map for the library (the runner checks every process of the service
with both).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from bench.allocators import knobs, timers
from bench.allocators.registry import Allocator
from bench.allocators.timers import Timer
from service.process.childenv import without_allocator_env

__all__ = ["Verification", "library_mapped", "verify"]


@dataclass(frozen=True)
class Verification:
    """What a process started with the preload said about its own malloc."""

    ok: bool
    malloc_library: str | None
    version: str | None
    reason: str | None = None
    pid: int | None = None
    #: each asked setting judged in the probe (bench.allocators.knobs.judge); empty when the
    #: allocator's environment asks for none
    knobs: list[dict[str, Any]] = field(default_factory=list)
    #: the allocator's return timers as the probe read them back (bench.allocators.timers)
    timers: list[Timer] = field(default_factory=list)


def verify(alloc: Allocator, *, python: str | None = None, timeout: float = 30.0) -> Verification:
    """Start the real interpreter under the allocator and check who serves malloc there."""
    if not alloc.available:
        return Verification(False, None, None, alloc.reason)
    env = {
        **without_allocator_env(os.environ),
        **alloc.preload_env(),
        **knobs.probe_env(alloc.env),
    }
    cmd = [python or sys.executable, "-m", "service.allocators.probe"]
    try:
        out = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Verification(False, None, None, f"the probe gave no answer within {timeout:.0f} s")
    if "cannot be preloaded" in out.stderr:
        line = next(ln for ln in out.stderr.splitlines() if "cannot be preloaded" in ln)
        return Verification(False, None, None, f"ld.so ignored the preload: {line.strip()}")
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or [f"exit code {out.returncode}"]
        return Verification(False, None, None, f"the probe failed: {tail[0]}")
    try:
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return Verification(False, None, None, f"the probe printed no JSON: {out.stdout[:200]!r}")
    served = info.get("malloc_library")
    expected = alloc.expected_library()
    ok = served is not None and os.path.realpath(served) == expected
    reason = None if ok else f"malloc is served by {served}, expected {expected}"
    judged = knobs.judge(knobs.asked_settings(alloc.env), info.get("knobs"))
    if ok and (mismatch := knobs.failure_reason(judged)):
        ok, reason = False, mismatch
    return Verification(
        ok,
        served,
        info.get("version"),
        reason,
        info.get("pid"),
        judged,
        timers.from_report(info.get("knobs")),
    )


def library_mapped(pid: int, library: str) -> bool | None:
    """Whether /proc/PID/maps shows the library's real path (None when the process is gone).

    A process that has exited but is not yet reaped (a zombie, or one tearing down its memory)
    still has /proc/PID/maps, read empty: that is gone too, not "not mapped". A recycled worker
    can reach that state between its ready line and the check.
    """
    real = os.path.realpath(library)
    mapped_any = False
    try:
        with open(f"/proc/{pid}/maps") as fh:
            for line in fh:
                mapped_any = True
                path = line.rstrip("\n").split(maxsplit=5)[-1]
                if path.startswith("/") and os.path.realpath(path) == real:
                    return True
    except OSError:
        return None
    return False if mapped_any else None
