"""Sentences about the service under a memory limit: who lived under it, who was killed, when,
how often, and at what latency (bench.report.limit reduces the run; compare judges the noise).

A run without a limit says so in one sentence, so the article's section is never blank.
The order of the first kills is a ranking like any other (ties under the noise rule), and
the latency under the cap is judged by the same rule as the latency section's.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.report.limit import LimitResult, LimitRun, when_fmt
from bench.report.prose.rankings import names_text, not_ranked, ranking_body, value_text
from bench.report.stats import Sample, latency_verdict
from bench.report.units import fmt_count, fmt_mb, fmt_ms, fmt_seconds, join_names, md_safe

__all__ = ["NO_LIMIT", "memory_limit"]

#: What a run without a limit says in the limit section.
NO_LIMIT = (
    "This run set no memory limit on the service. A spec's `service.memory_limit_mb` sets one "
    "on the service's cgroup, and this section then says which allocators lived under it, "
    "how soon the kernel killed the others' workers, how often, and at what latency; "
    "specs/memory-limit.yaml runs the stock allocators under a limit between the leanest "
    "and the heaviest memory of the quick study."
)


def _repeats(r: LimitResult) -> str:
    return "the run" if r.repeats == 1 else f"any of its {r.repeats} repeats"


def _lived(view: LimitRun, names: list[str]) -> str:
    if not names:
        return "No allocator lived under it."
    results = view.results
    charged = {n: results[n].peak_charged for n in names if results[n].peak_charged}
    span = f"{fmt_seconds(view.load_s)} of load and {fmt_seconds(view.idle_s)} of idle"
    if len(charged) == 1:
        ((name, peak),) = charged.items()
        peaks = f"; its charged peak was {value_text(peak, fmt_mb)}"
    elif charged:
        each = join_names([f"{md_safe(n)} {value_text(s, fmt_mb)}" for n, s in charged.items()])
        peaks = f"; charged peaks: {each}"
    else:
        peaks = ""
    return (
        f"{names_text(names)} lived under it: no worker was killed in "
        f"{_repeats(results[names[0]])} ({span}){peaks}."
    )


def _killed(view: LimitRun, names: list[str]) -> str:
    if not names:
        return ""
    results = view.results
    counts = {results[n].oom_kills for n in names}
    if len(counts) == 1:
        (count,) = counts
        kills = f"{fmt_count(count)} each"
    else:
        kills = join_names([f"{md_safe(n)} {fmt_count(results[n].oom_kills)}" for n in names])
    partial = [
        f"{md_safe(n)} in {r.killed_repeats} of {r.repeats} repeats"
        for n in names
        if (r := results[n]).killed_repeats < r.repeats
    ]
    some = f" (only {join_names(partial)})" if partial else ""
    if len(names) == 1:
        r = results[names[0]]
        when = when_fmt(view.load_s)
        first = when(r.first_kill_s.center) if r.first_kill_s else "at a time not recorded"
        return (
            f"The kernel killed workers of {md_safe(names[0])}{some}: the first {first}, "
            f"{fmt_count(r.oom_kills)} in all."
        )
    firsts: dict[str, Sample] = {n: s for n in names if (s := results[n].first_kill_s)}
    order = ranking_body(
        firsts, when_fmt(view.load_s), "the first to lose a worker", "the last", descending=False
    )
    return f"The kernel killed workers of {names_text(names)}{some}. {order} Kills in all: {kills}."


def _latency(view: LimitRun, names: Sequence[str]) -> str:
    results = view.results
    p99 = {n: s for n in names if (s := results[n].p99)}
    failed = [n for n in names if results[n].errors]
    clean = [n for n in names if n not in failed]
    if failed:
        counts = join_names(
            [
                f"{md_safe(n)} {fmt_count(results[n].errors)} of {fmt_count(results[n].requests)}"
                for n in failed
            ]
        )
        none = f"; none for {names_text(clean)}" if clean else ""
        fails = f"Failed requests, each counted at the timeout or more: {counts}{none}."
    else:
        fails = "No request failed."
    v = latency_verdict(p99)
    if v is None:
        if not p99:
            return fails
        (name,) = p99
        return f"Under the cap p99 was {value_text(p99[name], fmt_ms)}. {fails}"
    span = (
        f"p99 ranged from {fmt_ms(v.low_ms)} ({md_safe(v.lowest)}) to {fmt_ms(v.high_ms)} "
        f"({md_safe(v.highest)})"
    )
    if v.moved:
        head = (
            f"Under the cap tail latency moved: {span}, beyond the {fmt_ms(v.band_ms)} we "
            "treat as noise."
        )
    elif v.high_ms - v.low_ms <= v.band_ms:
        head = (
            f"Under the cap tail latency barely moved: {span}, within the "
            f"{fmt_ms(v.band_ms)} we treat as noise."
        )
    else:
        head = (
            f"Under the cap {span}, a gap no larger than the repeats' own disagreement (their "
            "95% intervals or the A/A pair's drift)."
        )
    return f"{head} {fails}"


def memory_limit(
    view: LimitRun | None,
    *,
    workers: int,
    ranked: Sequence[str],
    missing: Sequence[tuple[str, str]] = (),
) -> str:
    """The limit section's sentences (NO_LIMIT for a run without one).

    `ranked`: the allocators compared (the A/A duplicate left out); `missing`: those without
    service data, named so none is silently absent.
    """
    if view is None:
        return NO_LIMIT
    names = [n for n in view.results if n in ranked]
    head = (
        f"Every repeat ran the service under a memory limit of {fmt_mb(view.limit_bytes)} on "
        f"its cgroup: the supervisor and its {workers} workers together, charged for the page "
        "cache and kernel memory they use as well as for the anonymous memory the other "
        "sections measure. The kernel reclaims page cache first and kills a worker when "
        "that is not enough; uvicorn starts a new, empty one and the load goes on."
    )
    lived = [n for n in names if view.results[n].lived]
    killed = [n for n in names if not view.results[n].lived]
    parts = [head, _lived(view, lived), _killed(view, killed), _latency(view, names)]
    parts.append(not_ranked(missing))
    return " ".join(p for p in parts if p)
