"""The headline: memory at rest and at the peak, ranked, with the overhead per live byte.

Chart {{ chart.peak_settled }}; table {{ table.headline }}; sentences {{ say.headline }},
{{ say.settled_ranking }}, {{ say.peak_ranking }}, {{ say.peak_vs_settled }},
{{ say.peak_caught }}, {{ say.payload }}, {{ say.overhead }}, {{ say.overhead_ranking }};
values of the extremes (`leanest_settled.*`, `peak.band`, `leanest_overhead_settled.*`, ...).

Did the sampler catch the peak ({{ say.peak_caught }})? The peak is the highest
anonymous-memory sample of the load, so a spike shorter than the sampling interval can slip
between two samples. Where the service ran in a memory cgroup the kernel keeps its own
high-water mark of the group's charge (cgroup v1 `memory.max_usage_in_bytes`, restarted as
load began; v2 `memory.peak`), which misses nothing. It counts page cache and kernel memory
too, so it is not compared with the anonymous peak directly: each is compared with its own
value as load ended. The kernel's peak standing well further above its end-of-load charge
than the sampled peak stands above the end-of-load sample is a peak the samples missed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.report import experiment
from bench.report.aggregate import Results
from bench.report.charts import memory as chart
from bench.report.charts.figure import Names, repeats_phrase
from bench.report.prose import memory, rankings
from bench.report.prose.rankings import extreme_values, value_band
from bench.report.runfolders import Run
from bench.report.section import Entries, Loaded, Section
from bench.report.sections.workload import hosted_app
from bench.report.stats import extremes_ratio, ranked
from bench.report.units import fmt_mb, fmt_ratio, join_names, md_safe

__all__ = [
    "MISSED_REL",
    "HeadlineSection",
    "missed_peaks",
    "peak_caught_sentence",
    "peak_settled_caption",
]


@dataclass(frozen=True)
class Headline:
    run: Run
    full: Results
    res: Results
    aa_name: str | None
    missing: list[tuple[str, str]]
    hosted: bool


class HeadlineSection(Section[Headline]):
    name = "headline"
    title = "The headline: memory at rest"

    def compute(self, loaded: Loaded) -> Headline:
        return Headline(
            loaded.run,
            loaded.full,
            loaded.res,
            loaded.aa_name,
            loaded.missing,
            hosted_app(loaded.run) is not None,
        )

    def values(self, data: Headline) -> dict[str, str]:
        return {**_memory_values(data.res), **_overhead_values(data.res)}

    def sentences(self, data: Headline) -> Entries:
        res, missing, aa_name = data.res, data.missing, data.aa_name
        svc = res.service
        settled = {n: r.settled for n, r in svc.items()}
        peak = {n: r.peak for n, r in svc.items()}
        overhead_settled = {n: r.overhead_settled for n, r in svc.items() if r.overhead_settled}
        return {
            "headline": lambda: memory.headline(res),
            "settled_ranking": lambda: rankings.ranking(
                settled, fmt_mb, "leanest", "heaviest", missing=missing, aa_name=aa_name
            ),
            "peak_ranking": lambda: rankings.ranking(
                peak, fmt_mb, "leanest", "heaviest", missing=missing, aa_name=aa_name
            ),
            "overhead": lambda: memory.overhead(res, hosted=data.hosted),
            "payload": lambda: memory.payload(res, hosted=data.hosted),
            "overhead_ranking": lambda: rankings.ranking(
                overhead_settled,
                fmt_ratio,
                "leanest",
                "heaviest",
                missing=missing,
                aa_name=aa_name,
            ),
            "peak_vs_settled": lambda: memory.peak_vs_settled(res),
            "peak_caught": lambda: peak_caught_sentence(data.run.summary, res.names),
        }

    def charts(self, data: Headline) -> Entries:
        names = Names.of(data.full)
        caption = peak_settled_caption(data.full, names)
        return {"peak_settled": lambda: chart.peak_settled(data.full, names, caption)}

    def tables(self, data: Headline, prefix: str) -> Entries:
        return {"headline": lambda: experiment.headline_table(data.full)}


def peak_settled_caption(res: Results, names: Names) -> str:
    """What the peak-and-settled chart encodes, in words (the takeaways are the sentences)."""
    reps = repeats_phrase(((r.peak, r.settled), r.excluded) for r in res.service.values())
    service = [n for n in res.names if n in res.service]
    return (
        f"Peak (faint bar) and settled (solid bar) anonymous memory of the "
        f"service per allocator ({reps}), leanest settled first"
        + (", each variant after its stock allocator." if res.variants else ".")
        + names.aa_sentence(service, "hollow with a dashed outline")
        + names.variant_sentence(service, "with a lighter fill")
    )


def _memory_values(res: Results) -> dict[str, str]:
    settled = {n: r.settled for n, r in res.service.items()}
    peak = {n: r.peak for n, r in res.service.items()}
    out = {}
    out.update(
        extreme_values(
            settled,
            "",
            fmt_mb,
            best_low=True,
            best="leanest_settled",
            worst="heaviest_settled",
            unit_key="mb",
        )
    )
    out.update(
        extreme_values(
            peak,
            "",
            fmt_mb,
            best_low=True,
            best="leanest_peak",
            worst="heaviest_peak",
            unit_key="mb",
        )
    )
    at_rest, peaks = ranked(settled), ranked(peak)  # as the rankings see them
    out["settled.ratio"] = fmt_ratio(extremes_ratio(at_rest))
    out["peak.ratio"] = fmt_ratio(extremes_ratio(peaks))
    out["settled.band"] = value_band(at_rest, fmt_mb)
    out["peak.band"] = value_band(peak, fmt_mb)
    lo_settled = min((s.center for s in at_rest.values()), default=None)
    hi_peak = max((s.center for s in peaks.values()), default=None)
    out["heaviest_peak_to_leanest_settled.ratio"] = fmt_ratio(
        hi_peak / lo_settled if hi_peak and lo_settled else None
    )
    return out


def _overhead_values(res: Results) -> dict[str, str]:
    """Leanest and heaviest overhead per byte of live payload, at the peak and settled."""
    out: dict[str, str] = {}
    for when in ("settled", "peak"):
        items = {n: getattr(r, f"overhead_{when}") for n, r in res.service.items()}
        items = {n: x for n, x in items.items() if x is not None}
        out.update(
            extreme_values(
                items,
                "",
                fmt_ratio,
                best_low=True,
                best=f"leanest_overhead_{when}",
                worst=f"heaviest_overhead_{when}",
                unit_key="ratio",
            )
        )
        out[f"overhead_{when}.band"] = value_band(items, fmt_ratio)
    return out


#: A kernel peak above the sampled one by more than this share of the sampled peak (net of
#: the end-of-load values) is a peak the samples missed.
MISSED_REL = 0.02


def _gaps(rows: Iterable[dict[str, Any]]) -> dict[str, list[tuple[float, float, float]]]:
    """Per allocator: (kernel gap, sampled gap, sampled peak) of each service repeat that
    recorded both."""
    out: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for r in rows:
        if r.get("experiment") != "service":
            continue
        kp, ke = r.get("load_peak_charged_bytes"), r.get("load_end_charged_bytes")
        ap, ae = r.get("peak_anon_bytes"), r.get("load_end_anon_bytes")
        if None in (kp, ke, ap, ae) or not ap:
            continue
        out[str(r["allocator"])].append((kp - ke, ap - ae, ap))
    return out


def missed_peaks(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Allocator -> the most the kernel's peak stood above the samples' (bytes, net of the
    end-of-load values), for those where it exceeded MISSED_REL of the sampled peak."""
    out = {}
    for name, gaps in _gaps(rows).items():
        worst = max(k - a for k, a, _ in gaps)
        if any(k - a > MISSED_REL * p for k, a, p in gaps):
            out[name] = worst
    return out


def peak_caught_sentence(rows: list[dict[str, Any]], names: Iterable[str]) -> str:
    """Whether the sampled peaks hold against the kernel's high-water mark, from data."""
    wanted = list(names)
    gaps = {n: g for n, g in _gaps(rows).items() if n in wanted}
    if not gaps:
        return (
            "The run recorded no kernel high-water mark of the service's memory (it ran in no "
            "memory cgroup, or predates the record), so a peak briefer than a sample interval "
            "cannot be ruled out."
        )
    sources = {str(r.get("load_peak_source")) for r in rows if r.get("load_peak_source")}
    how = (
        f"restarted as load began, {', '.join(sorted(sources))}"
        if sources
        else "counted from the group's start"
    )
    missed = {n: v for n, v in missed_peaks(rows).items() if n in wanted}
    head = (
        "The kernel keeps its own high-water mark of the service's memory group, which misses "
        f"nothing between samples ({how}; it counts page cache and kernel memory too, so each "
        "is held against its own value as load ended)."
    )
    if not missed:
        worst = max(k - a for g in gaps.values() for k, a, _ in g)
        by = f"no more than {fmt_mb(worst)} further" if round(worst / 1e6, 1) > 0 else "no further"
        return (
            f"{head} For every allocator it stood {by} above its end-of-load value than the "
            "sampled peak did: the samples caught the peak."
        )
    parts = [f"{md_safe(n)} (by {fmt_mb(v)})" for n, v in missed.items()]
    return (
        f"{head} It rose above what the samples saw for {join_names(parts)}: a peak briefer "
        "than the sampling interval, so those sampled peaks are lower bounds."
    )
