"""Settling: the return timers each allocator runs, and how long each took to give back.

Sentences {{ say.timers }}, {{ say.settling }}; table {{ table.timers }}.

The settled value is meaningful only if the idle lasted long enough for the allocator's own
return mechanisms to act; a study whose idle ends before jemalloc's decay ranks jemalloc
among the keepers, and one whose idle is long enough ranks it leanest. So the article states
each allocator's timers as read back (the manifest's `timers`, bench.allocators.timers), how
the idle ended (a fixed length, or once memory had settled), how long each allocator took to
settle (runstats.settling, the summary's `settle_time_s`), and names any settled value that
was still falling when the idle ended, which no ranking places (bench.report.stats).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.allocators.timers import HORIZON_FACTOR, Timer, horizon_s
from bench.measure.runstats import SETTLE_BAND_MIN_BYTES, SETTLE_BAND_REL
from bench.report import specview
from bench.report.aggregate import Results, ServiceResult
from bench.report.datatable import Column, html_table
from bench.report.prose.rankings import names_text
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.units import fmt_mb, fmt_pct, fmt_seconds, join_names, md_safe

__all__ = [
    "FLAT_FROM_START_S",
    "SettlingSection",
    "idle_rule",
    "settling_sentence",
    "timers_of",
    "timers_sentence",
    "timers_table",
]


#: A settle time under this counts as "flat from the start of idle": within the first sample
#: or two the memory was already inside the band.
FLAT_FROM_START_S = 1.0


def timers_of(run: Run) -> dict[str, list[Timer]]:
    """Each allocator's return timers as its verification probe read them back (none: the
    run predates the read-back, or the allocator was not verified)."""
    out: dict[str, list[Timer]] = {}
    for entry in run.manifest.get("allocators") or []:
        records = entry.get("timers")
        if not entry.get("name") or not isinstance(records, list):
            continue
        timers = []
        for r in records:
            if isinstance(r, dict) and r.get("setting"):
                timers.append(
                    Timer(
                        family=str(r.get("family") or ""),
                        setting=str(r["setting"]),
                        kind=str(r.get("kind") or ""),
                        value=r.get("value"),
                        seconds=r.get("seconds"),
                        meaning=str(r.get("meaning") or ""),
                        how=r.get("how"),
                        why=r.get("why"),
                    )
                )
        if timers:
            out[str(entry["name"])] = timers
    return out


def timers_table(run: Run, res: Results) -> str:
    """One row per return setting of each measured allocator, as read back ("" when the run
    recorded none)."""
    timers = timers_of(run)
    rows = []
    for name in res.names:
        for t in timers.get(name, []):
            value = t.value if t.value is not None else f"not read: {t.why or 'no reading'}"
            rows.append([md_safe(name), t.setting, value if t.kind != "none" else "—", t.meaning])
    if not rows:
        return ""
    return html_table(
        [
            Column("allocator"),
            Column("setting"),
            Column("read back", abbr="the value the allocator reported inside its process"),
            Column("what it does"),
        ],
        rows,
        table_id="timers-table",
        caption="When each allocator gives freed memory back on its own, as its own process "
        "reported it (jemalloc mallctl, mimalloc mi_option_get, gperftools' exported flags; "
        "glibc has no getter and no timer).",
    )


def idle_rule(run: Run) -> str:
    """How the idle ended: 'lasted 120 s' or the settled rule with its bounds."""
    most = float(specview.get(run.spec, "service.idle_s"))
    if specview.get(run.spec, "service.idle_ends") != "settled":
        return f"the idle lasted {fmt_seconds(most)} for every allocator"
    window = float(specview.get(run.spec, "service.settle_window_s"))
    least = specview.idle_floor_s(run.spec)
    return (
        f"the idle ended once memory had stayed within {band_text()} for {fmt_seconds(window)} "
        f"and did not fall, after at least {fmt_seconds(least)} and "
        f"{HORIZON_FACTOR:g} times the allocator's return timers as read back, at most "
        f"{fmt_seconds(most)}"
    )


def band_text(whose: str = "its") -> str:
    """The settle band in words: '1% of its settled value (at least 1 MiB)'; `whose`
    'their' for several allocators."""
    floor_mib = SETTLE_BAND_MIN_BYTES >> 20
    value = "value" if whose == "its" else "values"
    return f"{fmt_pct(SETTLE_BAND_REL)} of {whose} settled {value} (at least {floor_mib} MiB)"


def timers_sentence(run: Run, res: Results) -> str:
    """The longest return horizon among the measured allocators against the idle as run."""
    timers = {n: t for n, t in timers_of(run).items() if n in res.service}
    if not timers:
        return (
            "The run recorded no allocator's return timers (it predates their read-back), so "
            f"the idle cannot be held against them; {idle_rule(run)}."
        )
    horizons = {n: horizon_s(t) for n, t in timers.items()}
    longest = max(horizons.values())
    rule = idle_rule(run)
    if longest <= 0:
        return f"None of the measured allocators returns memory on a timer; {rule}."
    who = [n for n, h in horizons.items() if h == longest]
    idles = [r.idle_run.low for n, r in res.service.items() if n in who and r.idle_run]
    shortest = min(idles) if idles else float(specview.get(run.spec, "service.idle_s"))
    head = (
        f"The longest return timer here is {names_text(who)}'s: up to {fmt_seconds(longest)} "
        f"after the last free; {rule}."
    )
    if shortest < longest:
        return (
            f"{head} That idle ({fmt_seconds(round(shortest, 1))}) ended before "
            f"{names_text(who)}'s timer ran out: its settled value may still be on the way "
            "down, and a longer idle would show where it stops."
        )
    return head


def _gave(r: ServiceResult) -> str:
    back = r.given_back.center if r.given_back else None
    if back is None or back <= 0:
        return "gave nothing back"
    return f"gave back {fmt_pct(back)} of its peak"


def settling_sentence(res: Results) -> str:
    """Per allocator, how long its memory took to settle in idle, from data: those flat from
    the start together, then each that settled later with its time and what it gave back,
    then those still falling when idle ended."""
    svc = res.service
    timed = {n: r for n, r in svc.items() if r.settle_time is not None}
    if not timed:
        return (
            "The run recorded no settle times (it predates them), so how long each allocator "
            "took to settle is not known."
        )
    still = [n for n, r in timed.items() if r.settled.falling_after_s is not None]
    flat = [
        n for n, r in timed.items() if n not in still and r.settle_time.center < FLAT_FROM_START_S
    ]
    later = sorted(
        (n for n in timed if n not in still and n not in flat),
        key=lambda n: (timed[n].settle_time.center, n),  # type: ignore[union-attr]
    )
    parts = []
    if flat:
        one = len(flat) == 1
        parts.append(
            f"{names_text(flat)} {'was' if one else 'were'} within "
            f"{band_text('its' if one else 'their')} from the first second of idle: nothing "
            f"of {'its' if one else 'theirs'} came back later"
        )
    for n in later:
        r = timed[n]
        parts.append(
            f"{md_safe(n)} {_gave(r)} and settled {r.settle_time.center:.0f} s into the idle"  # type: ignore[union-attr]
        )
    for n in still:
        r = timed[n]
        parts.append(
            f"{md_safe(n)} was still returning memory when idle ended after "
            f"{r.settled.falling_after_s:.0f} s (at {fmt_mb(r.settled.center)}), so its "
            "settled value is not ranked"
        )
    mixed = [n for n, r in timed.items() if r.falling and n not in still]
    tail = ""
    if mixed:
        tail = (
            f" Some repeats of {names_text(mixed)} were still falling when idle ended; they "
            "are left out of the settled means."
        )
    return "; ".join(parts) + "." + tail if parts else tail.strip()


def idle_lengths(res: Results) -> Mapping[str, Any]:
    """Each allocator's idle as run (mean of its repeats), for the method table."""
    return {n: r.idle_run.center for n, r in res.service.items() if r.idle_run is not None}


def idle_sentence(res: Results) -> str:
    """'jemalloc idled 31 s, the others 8 s' when an idle that ends once settled ran them
    differently ('' when every idle was as long)."""
    lengths = idle_lengths(res)
    if not lengths or max(lengths.values()) - min(lengths.values()) < 1:
        return ""
    groups: dict[int, list[str]] = {}
    for n, x in lengths.items():
        groups.setdefault(round(x), []).append(n)
    parts = [f"{names_text(v)} {fmt_seconds(k)}" for k, v in sorted(groups.items())]
    return f"The idle as it ran: {join_names(parts)}."


@dataclass(frozen=True)
class Settling:
    run: Run
    full: Results
    res: Results


class SettlingSection(Section[Settling]):
    name = "settling"
    title = "Keep versus return"

    def compute(self, loaded: Loaded) -> Settling:
        return Settling(loaded.run, loaded.full, loaded.res)

    def sentences(self, data: Settling) -> Entries:
        res = data.res
        return {
            "settling": lambda: " ".join(
                t for t in (settling_sentence(res), idle_sentence(res)) if t
            ),
            "timers": lambda: timers_sentence(data.run, res),
        }

    def tables(self, data: Settling, prefix: str) -> Entries:
        return {"timers": lambda: timers_table(data.run, data.full)}
