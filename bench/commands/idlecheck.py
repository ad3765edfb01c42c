"""`allocstudy check`'s look at the idle: is it long enough for the allocators' own timers?

A settled value taken before an allocator's return timer has run shows that allocator
halfway down (the quick study's 7 s idle once ended before jemalloc's 10 s decay and ranked
it among the keepers). So `check` reads back, in a real process under each allocator of the
spec that can be had here (bench.allocators.verification, no build), when it gives memory
back on its own, and warns when the idle cannot outlast the longest of those timers.
"""

from __future__ import annotations

from bench.allocators import timers
from bench.allocators.registry import resolve_spec
from bench.allocators.verification import verify
from bench.spec import Spec

__all__ = ["idle_warnings"]


def idle_warnings(spec: Spec) -> list[str]:
    """One line per allocator whose return timers outlast the idle the spec gives it."""
    out = []
    for alloc in resolve_spec(spec, build=False):
        if not alloc.available:
            continue
        check = verify(alloc)
        if not check.ok:
            continue
        horizon = timers.horizon_s(check.timers)
        s = spec.service_for(alloc.name)
        idle = (
            min(timers.least_idle_s(check.timers, s.idle_floor_s), s.idle_s)
            if s.idle_ends == "settled"
            else s.idle_s
        )
        if horizon > 0 and idle < horizon:
            longest = max(check.timers, key=lambda t: t.seconds or 0)
            out.append(
                f"warning: {alloc.name} may return memory up to {horizon:g} s after its last "
                f"free ({longest.setting} = {longest.value}, read back), but its idle lasts "
                f"{idle:g} s: its settled value would be caught on the way down; give "
                f"service.idle_s at least {timers.HORIZON_FACTOR * horizon:g} s or use "
                "idle_ends: settled"
            )
        waiting = timers.waits_for_calls(check.timers)
        if waiting is not None and idle > 0 and s.idle_probe is None:
            which = (
                "which bare /health probes, their small allocations kept in its caches, may "
                "never make"
                if s.idle_rate > 0
                else "which a silent idle never makes"
            )
            out.append(
                f"warning: {alloc.name}'s {waiting.setting} ({waiting.value}, read back) "
                f"advances only on the program's own calls into the allocator, {which}: what "
                "it gives back in idle would be chance; give service.idle_probe, e.g. "
                "{blocks: 256} (256 malloc/free pairs of 64 KiB a probe)"
                + ("" if s.idle_rate > 0 else ", with service.idle_rate above 0")
            )
    return out
