"""One run's tables reduced to what the article compares: per allocator, per experiment.

The summary table holds one row per experiment, allocator and repeat. Every measure is the
mean of its clean repeats with a 95% interval (bench.report.stats). A repeat the runner
marked disturbed (the machine was busy) or the method flagged (failed requests, holes in the
samples, a call of ours in the settle window) is left out of the mean and the interval unless
no clean repeat exists, and is listed, as are allocators without data, each with its reason.

An A/A pair (the spec's `aa_pair`: one allocator run a second time as `<name>-again`) gives
each measure a noise floor, the relative difference of the two; every Sample of that measure
carries it (`floor_rel`), so a tie between single repeats is judged against this machine's
own drift. `Results.ranked()` is the view the rankings use: the A/A duplicate left out, and
the variants too (a stock allocator with a setting changed, the spec's `{name, base, env}`),
which the article holds against their own base alone (bench.report.sections.knobs), never against
the other stock allocators. Each variant carries the runner's read-back of its settings (`Knob`),
when the run recorded one.

Over 500 lines on purpose: the result types and the one reduction that fills them are read
together (every field's meaning is the step that computes it), and every section reads them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, TypeVar

from bench.measure.runstats import disturbs_memory, given_back_share
from bench.report.runfolders import Run
from bench.report.stats import Sample, relative_difference, ties
from bench.report.stats import summarize as _summarize

__all__ = [
    "AA_MEASURES",
    "AAPair",
    "AllocatorInfo",
    "ControlResult",
    "Disturbance",
    "Flag",
    "Knob",
    "Results",
    "ServiceResult",
    "aa_untied",
    "aggregate",
    "clean_repeats",
    "control_measure",
    "knobs_of",
]


@dataclass(frozen=True)
class Knob:
    """One setting a variant asked for, and what the runner read back inside the process.

    `state` is "verified" (read back as asked), "mismatch" (read back otherwise: the variant
    did not run as the spec says), "unverifiable" (the allocator offers no way to read it
    back; `why` says so) or whatever newer state a runner records, shown as it is.
    `processes` counts the processes that read it back; `effect` is what the runner saw the
    setting do, where it looked (glibc's arenas formed); `control` says what was (or was not)
    checked in the C++ control.
    """

    setting: str
    asked: str | None
    read_back: str | None
    state: str
    how: str | None = None
    why: str | None = None
    processes: int | None = None
    effect: str | None = None
    control: str | None = None


def _text(x: Any) -> str | None:
    """A manifest value as text (numbers and booleans as JSON writes them); None stays None."""
    if x is None:
        return None
    if isinstance(x, bool):
        return "true" if x else "false"
    return str(x)


def knobs_of(entry: dict[str, Any]) -> tuple[Knob, ...]:
    """The `knobs` records of one manifest entry; absent or malformed ones are skipped, so a
    run made before the read-back existed reads as "not recorded", never as an error."""
    raw = entry.get("knobs")
    if not isinstance(raw, list):
        return ()
    out = []
    for k in raw:
        if not isinstance(k, dict) or not k.get("setting"):
            continue
        out.append(
            Knob(
                setting=str(k["setting"]),
                asked=_text(k.get("asked")),
                read_back=_text(k.get("read_back")),
                state=str(k.get("state") or "not recorded"),
                how=_text(k.get("how")),
                why=_text(k.get("why") or k.get("reason") or k.get("note")),
                processes=k["processes"] if isinstance(k.get("processes"), int) else None,
                effect=_text(k.get("effect")),
                control=_text(k.get("control")),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class AllocatorInfo:
    """What the manifest says about one allocator: where it came from and whether it ran."""

    name: str
    status: str  # ok | failed | skipped | incomplete | no data
    reason: str | None
    kind: str | None = None
    base: str | None = None
    library: str | None = None
    version: str | None = None
    sha256: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    run_id: str | None = None  # the run its data came from, when a resume reused it
    send_late_p99_ms: float | None = None
    loadgen_cpu_pct: float | None = None
    fix: str | None = None  # the runner's suggestion for making a failed allocator work
    expected_library: str | None = None  # the file that must serve malloc when it is loaded
    same_as: str | None = None  # set on the A/A duplicate: the allocator it runs again
    knobs: tuple[Knob, ...] = ()  # a variant's settings as read back (none: not recorded)
    description: str | None = None


@dataclass(frozen=True)
class ServiceResult:
    """The Python service under one allocator, over its repeats."""

    peak: Sample
    settled: Sample
    reclaimed: Sample | None
    p50: Sample | None
    p95: Sample | None
    p99: Sample | None
    rps: Sample | None
    requests: int
    errors: int
    #: anonymous memory of the freshly started service (every worker ready)
    ready: Sample | None = None
    #: live payload of all workers (/stats) when ready, at the end of load, at the end of idle
    live_ready: Sample | None = None
    live_load_end: Sample | None = None
    live_idle_end: Sample | None = None
    #: memory grown since ready per byte of live payload grown, at the peak and settled
    overhead_peak: Sample | None = None
    overhead_settled: Sample | None = None
    #: share of the peak given back by the end of idle, (peak - settled) / peak
    given_back: Sample | None = None
    #: repeats left out of the means as disturbed or flagged (all kept when none was clean)
    excluded: int = 0
    #: seconds from the start of idle until memory stayed within the settle band of its
    #: settled value (bench.measure.runstats.settling); None in runs made before it existed
    settle_time: Sample | None = None
    #: the idle as it ran (it may end once memory has settled)
    idle_run: Sample | None = None
    #: repeats whose memory was still falling when idle ended (kept or left out)
    falling: int = 0
    #: the saturation flag when every repeat used was saturated (the app could not keep up)
    saturated: str | None = None


@dataclass(frozen=True)
class ControlResult:
    """The C++ control under one allocator, over its repeats."""

    allocs_per_s: Sample | None
    peak: Sample | None
    settled: Sample | None
    #: allocations per CPU-second of the churn (counts only the time its threads ran)
    allocs_per_cpu_s: Sample | None = None
    #: whether any repeat ran more threads than it had CPUs (None: not recorded)
    oversubscribed: bool | None = None
    threads: int | None = None
    #: the rest after the churn, as run
    idle_s: Sample | None = None
    #: repeats left out of the means as disturbed (all kept when none was clean)
    excluded: int = 0


@dataclass(frozen=True)
class AAPair:
    """One allocator run twice under two names: how far identical runs drift on this machine.

    `service` and `control` map a measure's field name (settled, p99, allocs_per_s, ...) to
    the relative difference of the pair; a measure one of them lacks is absent.
    """

    name: str
    again: str
    service: dict[str, float]
    control: dict[str, float]


@dataclass(frozen=True)
class Disturbance:
    """A repeat the runner flagged as disturbed (the machine was busy while it ran)."""

    experiment: str
    allocator: str
    repeat: int
    reason: str


@dataclass(frozen=True)
class Flag:
    """A repeat the method checks flagged (failed requests, sampling holes, ...), and why."""

    experiment: str
    allocator: str
    repeat: int
    flags: str


@dataclass(frozen=True)
class Results:
    """Everything comparative the article needs from one run."""

    allocators: tuple[AllocatorInfo, ...]
    service: dict[str, ServiceResult]
    control: dict[str, ControlResult]
    disturbed: tuple[Disturbance, ...]
    repeats: int
    flagged: tuple[Flag, ...] = ()
    aa: AAPair | None = None

    @property
    def not_measured(self) -> tuple[AllocatorInfo, ...]:
        return tuple(a for a in self.allocators if a.status != "ok")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.allocators)

    @property
    def variants(self) -> tuple[AllocatorInfo, ...]:
        """The variants (a stock allocator with a setting changed), in spec order."""
        return tuple(a for a in self.allocators if a.base)

    def ranked(self) -> Results:
        """These results without the A/A duplicate and the variants: what rankings compare.

        The duplicate is the same allocator as its pair; ranking it beside the others would
        count one allocator twice. A variant is tuned, and the stock defaults point different
        ways (glibc and jemalloc keep, mimalloc purges on a timer), so tuned numbers are held
        against their own base alone (bench.report.sections.knobs). Tables and charts keep both,
        labelled, so the drift and the knobs show.
        """
        return self.without({a.name for a in self.allocators if a.same_as or a.base})

    def without(self, names: set[str]) -> Results:
        """These results with the named allocators left out of every part."""
        if not names:
            return self
        return replace(
            self,
            allocators=tuple(a for a in self.allocators if a.name not in names),
            service={n: r for n, r in self.service.items() if n not in names},
            control={n: c for n, c in self.control.items() if n not in names},
        )

    def grouped(self, order: Iterable[str]) -> list[str]:
        """`order` (say, leanest first) with each allocator's family kept together: the
        A/A duplicate beside its pair, then the variants of the base, each part in `order`'s
        order; a family sits where its first stock member does (a variant whose base has no
        place in `order` comes last).

        Tables and charts list variants this way, so a variant is read against its base
        beside it, never as a rival placed among the other stock allocators.
        """
        order = list(order)
        parent = {a.name: a.base or a.same_as for a in self.allocators if a.base or a.same_as}
        variant = {a.name for a in self.allocators if a.base}
        families: dict[str, list[str]] = {}
        for name in sorted(order, key=lambda n: (n in variant, order.index(n))):
            families.setdefault(parent.get(name) or name, []).append(name)
        return [n for members in families.values() for n in members]

    def missing(self, experiment: str, *, brief: bool = False) -> list[tuple[str, str]]:
        """(name, why) of every allocator with no data in one experiment, in spec order.

        A ranking names these so that an allocator is never silently absent from it: one
        that failed or was skipped says so with its reason, one that ran but recorded nothing
        for this experiment says that. `brief` gives the status alone ("failed"), for
        sentences that follow one which already gave the reason (sections.trust.not_measured).
        """
        have = self.service if experiment == "service" else self.control
        out = []
        for a in self.allocators:
            if a.name in have:
                continue
            if a.status != "ok":
                why = a.status if brief else f"{a.status}: {a.reason or 'no reason recorded'}"
            elif brief:
                why = f"no {experiment} data recorded"
            else:
                why = f"it ran, but the run recorded no {experiment} measurements for it"
            out.append((a.name, why))
        return out


def control_measure(res: Results) -> str:
    """Which control throughput ranks the allocators: "wall" (allocations per second) as the
    original study did, or "cpu" (per CPU-second) when the control had more threads than
    CPUs, since its threads then took turns and the wall-clock rate counts their waiting.

    Here, beside the results, so every part that reads the control (sentences, charts, the
    knobs section, the comparison page) decides it alike."""
    over = any(c.oversubscribed for c in res.control.values())
    has_cpu = any(c.allocs_per_cpu_s for c in res.control.values())
    return "cpu" if over and has_cpu else "wall"


def _info(entry: dict[str, Any]) -> AllocatorInfo:
    loadgen = entry.get("loadgen") or []
    records = (
        [loadgen] if isinstance(loadgen, dict) else [r for r in loadgen if isinstance(r, dict)]
    )
    lates = [r["send_late_p99_ms"] for r in records if r.get("send_late_p99_ms") is not None]
    cpus = [r["cpu_pct"] for r in records if r.get("cpu_pct") is not None]
    return AllocatorInfo(
        name=str(entry.get("name")),
        status=str(entry.get("status") or "ok"),
        reason=entry.get("reason"),
        kind=entry.get("kind"),
        base=entry.get("base"),
        library=entry.get("library"),
        version=entry.get("version"),
        sha256=entry.get("sha256"),
        env=dict(entry.get("env") or {}),
        evidence={k: list(v or []) for k, v in (entry.get("evidence") or {}).items()},
        run_id=entry.get("run_id"),
        send_late_p99_ms=max(lates) if lates else None,
        loadgen_cpu_pct=max(cpus) if cpus else None,
        fix=entry.get("fix"),
        expected_library=entry.get("expected_library") or entry.get("library"),
        same_as=entry.get("same_as"),
        knobs=knobs_of(entry),
        description=entry.get("description") or None,
    )


def _col(rows: Iterable[dict[str, Any]], key: str) -> list[Any]:
    return [r.get(key) for r in rows]


def _disturbed(row: dict[str, Any], memory: bool) -> bool:
    """Whether the machine disturbed this repeat's figures: any disturbance for timings, and
    for memory only one that bears on it (bench.measure.runstats.disturbs_memory)."""
    if not row.get("disturbed"):
        return False
    return not memory or disturbs_memory(row.get("disturbed_reason"))


def clean_repeats(
    rows: list[dict[str, Any]], *, method_flags: bool, memory: bool = False
) -> tuple[list[dict[str, Any]], int]:
    """The repeats the means are built from, and how many were left out.

    Disturbed repeats (and, for the service, method-flagged ones) are left out unless
    nothing else exists: a number read with care beats no number. With `memory`, a repeat
    disturbed only in its timing (the generator sent late, other work took CPU) stays.
    """
    clean = [
        r for r in rows if not _disturbed(r, memory) and not (method_flags and r.get("flagged"))
    ]
    if not clean:
        return rows, 0
    return clean, len(rows) - len(clean)


def all_busy(rows: list[dict[str, Any]], *, memory: bool = False) -> bool:
    """Whether every repeat ran on a busy machine (then none could be left out)."""
    return bool(rows) and all(_disturbed(r, memory) for r in rows)


def _summary(
    values: Iterable[Any], *, excluded: int, busy: bool, saturated: bool = False
) -> Sample | None:
    """compare.summarize, with the repeats' disturbance and saturation carried on the
    Sample."""
    s = _summarize(values, excluded=excluded)
    if s is None or not (busy or saturated):
        return s
    return replace(s, busy=busy, saturated=saturated)


def saturation_of(rows: list[dict[str, Any]]) -> str | None:
    """The first saturation flag when every one of these repeats was saturated, else None."""
    if not rows or not all(r.get("saturated") for r in rows):
        return None
    for r in rows:
        for flag in str(r.get("flags") or "").split("; "):
            if flag.startswith("saturated"):
                return flag
    return "saturated"


def _given_back(rows: list[dict[str, Any]]) -> Sample | None:
    """The recorded share given back per repeat; computed from peak and settled where absent."""
    values = []
    for r in rows:
        x = r.get("given_back_share")
        if x is None:
            x = given_back_share(r.get("peak_anon_bytes"), r.get("settled_anon_bytes"))
        values.append(x)
    return _summarize(values)


def _falling_after(rows: list[dict[str, Any]]) -> float | None:
    """The longest idle of these repeats when every one of them ended still falling (its
    settled value is then no settled value), else None."""
    if not rows or not all(r.get("still_falling") is True for r in rows):
        return None
    idles = [float(r["idle_run_s"]) for r in rows if r.get("idle_run_s") is not None]
    return max(idles) if idles else None


def _service(rows: list[dict[str, Any]]) -> ServiceResult | None:
    """Memory from the repeats neither disturbed in their memory nor flagged by the method
    (a hole in the samples, a call in the settle window, memory still falling when idle
    ended: each makes the memory doubtful); latency from every repeat not disturbed, since a
    repeat flagged for failed requests or a dead worker charges those failures at the timeout
    by design, and leaving it out would undo the charge. A repeat disturbed only in its
    timing (the generator sent late, other work took CPU) leaves the latency figures and
    keeps its memory."""
    used, excluded = clean_repeats(rows, method_flags=True, memory=True)
    saturated = saturation_of(used)
    summarize = partial(
        _summary,
        excluded=excluded,
        busy=all_busy(rows, memory=True),
        saturated=bool(saturated),
    )
    timed, late_out = clean_repeats(rows, method_flags=False)
    latency = partial(
        _summary,
        excluded=late_out,
        busy=all_busy(rows),
        saturated=saturation_of(timed) is not None,
    )
    peak = summarize(_col(used, "peak_anon_bytes"))
    settled = summarize(_col(used, "settled_anon_bytes"))
    if peak is None or settled is None:
        return None
    overhead_settled = summarize(_col(used, "overhead_settled"))
    if (after := _falling_after(used)) is not None:  # neither is a settled value yet
        settled = replace(settled, falling_after_s=after)
        if overhead_settled is not None:
            overhead_settled = replace(overhead_settled, falling_after_s=after)
    return ServiceResult(
        peak=peak,
        settled=settled,
        reclaimed=summarize(_col(used, "reclaimed_anon_bytes")),
        p50=latency(_col(timed, "p50_ms")),
        p95=latency(_col(timed, "p95_ms")),
        p99=latency(_col(timed, "p99_ms")),
        rps=latency(_col(timed, "achieved_rps")),
        requests=int(sum(r.get("requests") or 0 for r in rows)),
        errors=int(sum(r.get("errors") or 0 for r in rows)),
        ready=summarize(_col(used, "ready_anon_bytes")),
        live_ready=summarize(_col(used, "ready_live_bytes")),
        live_load_end=summarize(_col(used, "load_end_live_bytes")),
        live_idle_end=summarize(_col(used, "idle_end_live_bytes")),
        overhead_peak=summarize(_col(used, "overhead_peak")),
        overhead_settled=overhead_settled,
        given_back=_given_back(used),
        excluded=excluded,
        settle_time=summarize(_col(used, "settle_time_s")),
        idle_run=summarize(_col(used, "idle_run_s")),
        falling=sum(1 for r in rows if r.get("still_falling") is True),
        saturated=saturated,
    )


def _control(rows: list[dict[str, Any]], runs: list[dict[str, Any]]) -> ControlResult | None:
    """Summary rows of the control, with the control table's own rows (`runs`) beside them
    for what only they hold: the threads, the rest as run, oversubscription."""
    used, excluded = clean_repeats(rows, method_flags=False)
    summarize = partial(_summary, excluded=excluded, busy=all_busy(rows))
    kept = {int(r.get("repeat") or 0) for r in used}
    runs_used = [r for r in runs if int(r.get("repeat") or 0) in kept] or runs
    per_cpu = _col(used, "allocs_per_cpu_s")
    if all(x is None for x in per_cpu):
        per_cpu = _col(runs_used, "allocs_per_cpu_s")
    over = [r["oversubscribed"] for r in runs if isinstance(r.get("oversubscribed"), bool)]
    threads = [int(r["threads"]) for r in runs if r.get("threads")]
    result = ControlResult(
        allocs_per_s=summarize(_col(used, "allocs_per_s")),
        peak=summarize(_col(used, "peak_anon_bytes")),
        settled=summarize(_col(used, "settled_anon_bytes")),
        allocs_per_cpu_s=summarize(per_cpu),
        oversubscribed=any(over) if over else None,
        threads=max(threads) if threads else None,
        idle_s=summarize(_col(runs_used, "idle_s")),
        excluded=excluded,
    )
    if result.allocs_per_s is None and result.settled is None:
        return None
    return result


R = TypeVar("R", ServiceResult, ControlResult)


#: Shares that sit near zero: a difference relative to them is no floor (0.01 against 0.001
#: "differs by 90%"), so the A/A pair gives them none.
_NO_RELATIVE_FLOOR = frozenset({"given_back"})


def _floors(a: R, b: R) -> dict[str, float]:
    """The A/A difference of every measure both results have (shares near zero excepted)."""
    out: dict[str, float] = {}
    for f in fields(a):
        if f.name in _NO_RELATIVE_FLOOR:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, Sample) and isinstance(y, Sample):
            out[f.name] = relative_difference(x.center, y.center)
    return out


def _with_floors(results: dict[str, R], floors: dict[str, float]) -> dict[str, R]:
    """Every result with the A/A floor of each measure set on its Sample."""
    out: dict[str, R] = {}
    for name, r in results.items():
        changes = {
            k: replace(getattr(r, k), floor_rel=v)
            for k, v in floors.items()
            if isinstance(getattr(r, k), Sample)
        }
        out[name] = replace(r, **changes)
    return out


def _aa_pair(
    infos: list[AllocatorInfo],
    service: dict[str, ServiceResult],
    control: dict[str, ControlResult],
) -> AAPair | None:
    for info in infos:
        first = info.same_as
        if not first:
            continue
        svc = (
            _floors(service[first], service[info.name])
            if {first, info.name} <= set(service)
            else {}
        )
        ctl = (
            _floors(control[first], control[info.name])
            if {first, info.name} <= set(control)
            else {}
        )
        if svc or ctl:
            return AAPair(first, info.name, svc, ctl)
    return None


def aggregate(run: Run) -> Results:
    """Reduce a run to per-allocator results, in the order the spec listed the allocators.

    An allocator the manifest says is ok but that has no summary rows is reported as
    "no data" with that reason, never dropped; one in the summary but not the manifest is kept.
    """
    by: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in run.summary:
        by[(str(row.get("experiment")), str(row.get("allocator")))].append(row)

    infos = [_info(e) for e in run.manifest.get("allocators") or [] if e.get("name")]
    known = {i.name for i in infos}
    for _, name in sorted(by):
        if name not in known:
            infos.append(AllocatorInfo(name=name, status="ok", reason=None))
            known.add(name)

    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in run.control:
        runs[str(row.get("allocator"))].append(row)
    service: dict[str, ServiceResult] = {}
    control: dict[str, ControlResult] = {}
    for info in infos:
        if info.status != "ok":
            continue
        if (s := _service(by.get(("service", info.name), []))) is not None:
            service[info.name] = s
        if (c := _control(by.get(("control", info.name), []), runs[info.name])) is not None:
            control[info.name] = c

    aa = _aa_pair(infos, service, control)
    if aa is not None:
        service = _with_floors(service, aa.service)
        control = _with_floors(control, aa.control)

    final: list[AllocatorInfo] = []
    for info in infos:
        if info.status == "ok" and info.name not in service and info.name not in control:
            info = AllocatorInfo(
                **{
                    **info.__dict__,
                    "status": "no data",
                    "reason": "the run recorded no summary rows for it",
                }
            )
        final.append(info)

    disturbed = tuple(
        Disturbance(
            experiment=str(r.get("experiment")),
            allocator=str(r.get("allocator")),
            repeat=int(r.get("repeat") or 0),
            reason=str(r.get("disturbed_reason") or "flagged by the runner"),
        )
        for r in run.summary
        if r.get("disturbed")
    )
    position = {a.name: i for i, a in enumerate(final)}
    flagged = tuple(
        Flag(
            experiment=str(r.get("experiment")),
            allocator=str(r.get("allocator")),
            repeat=int(r.get("repeat") or 0),
            flags=str(r.get("flags") or "flagged by the runner"),
        )
        for r in sorted(
            run.summary,
            key=lambda r: (
                str(r.get("experiment")) != "service",
                position.get(str(r.get("allocator")), len(position)),
                int(r.get("repeat") or 0),
            ),
        )
        if r.get("flagged")
    )
    repeats = max((len(v) for v in by.values()), default=0)
    return Results(tuple(final), service, control, disturbed, repeats, flagged, aa)


#: The measures the A/A pair is judged on, as (experiment, field, label).
AA_MEASURES = (
    ("service", "settled", "settled memory"),
    ("service", "peak", "peak memory"),
    ("service", "p50", "p50 latency"),
    ("service", "p99", "p99 latency"),
    ("control", "allocs_per_s", "control throughput"),
)


def aa_untied(res: Results) -> tuple[list[str], list[str]]:
    """(measures the A/A pair could be judged on, those on which it did not tie) by the
    page's own rule (stats.ties). A pair that does not tie says the rule is too tight for
    this machine's drift, and every ranking drawn with it is provisional."""
    if res.aa is None:
        return [], []
    judged, apart = [], []
    for experiment, key, label in AA_MEASURES:
        group = res.service if experiment == "service" else res.control
        a, b = group.get(res.aa.name), group.get(res.aa.again)
        x, y = getattr(a, key, None), getattr(b, key, None)
        if isinstance(x, Sample) and isinstance(y, Sample):
            judged.append(label)
            if not ties(x, y):
                apart.append(label)
    return judged, apart
