"""What the knobs did: each variant held against its own stock allocator, measure by measure.

A variant is a stock allocator with a setting changed (the spec's `{name, base, env}`). The
stock defaults point different ways, so a variant is never ranked against the other stock
allocators (`Results.ranked` leaves it out); it is compared with its base alone, on the
measures an operator turns a knob for: peak, settled, p99 latency and the C++ control's
throughput. Each comparison is a `changes.Change` with the variant as B and its base as A,
so its verdict ("changed", "unchanged") follows the same noise rule, in the same words, as
`allocstudy compare` between two runs.

Whether the knob took effect is the runner's read-back (the manifest's `knobs` records): read
back as asked ("verified"), read back otherwise ("mismatch", which fails the variant), or not
readable at all ("unverifiable", said with why). A run without read-back records says so.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from bench.report.aggregate import AllocatorInfo, Knob, Results, control_measure
from bench.report.changes import METRICS, Change, Metric
from bench.report.datatable import Cell, Column, html_table
from bench.report.stats import MIN_FLOOR_REL, TIE_REL, Sample
from bench.report.units import fmt_pct

__all__ = [
    "VariantReport",
    "knob_metrics",
    "knob_state",
    "knob_text",
    "knobs_table",
    "unsaid_mismatch",
    "variant_reports",
]

#: The measure keys compared: how the table heads them, with the unit, so the cells carry
#: bare numbers (numeric headings and cells do not wrap: short ones keep the table within
#: the column), and what each heading means in full, for its title.
_HEADINGS = {
    "peak": ("peak MB", "peak anonymous memory of the service, MB"),
    "settled": ("settled MB", "settled anonymous memory of the service, MB"),
    "p99": ("p99 ms", "p99 latency of the service, ms"),
    "allocs_per_s": ("control M/s", "C++ control throughput, million allocations per second"),
    "allocs_per_cpu_s": (
        "control M/CPU-s",
        "C++ control throughput, million allocations per CPU-second of its churn",
    ),
}


def knob_metrics(res: Results) -> tuple[Metric, ...]:
    """Peak, settled and p99 of the service, and the control throughput the article ranks
    by (per CPU-second when the control had more threads than CPUs: control_measure)."""
    throughput = "allocs_per_cpu_s" if control_measure(res) == "cpu" else "allocs_per_s"
    wanted = (("service", "peak"), ("service", "settled"), ("service", "p99"))
    wanted += (("control", throughput),)
    return tuple(m for e, k in wanted for m in METRICS if (m.experiment, m.key) == (e, k))


def knob_state(knobs: Sequence[Knob]) -> str:
    """One word for a variant's settings: the worst of its records ("mismatch" before
    "unverifiable" before "verified"), a newer state as recorded, or "not recorded"."""
    states = [k.state for k in knobs]
    if not states:
        return "not recorded"
    for worst in ("mismatch", "unverifiable"):
        if worst in states:
            return worst
    other = [s for s in states if s != "verified"]
    return other[0] if other else "verified"


def knob_text(k: Knob) -> str:
    """One read-back in words: 'opt.dirty_decay_ms read back as 0 in 5 processes (jemalloc
    mallctl)'."""
    how = f" ({k.how})" if k.how else ""
    if k.state == "verified":
        n = k.processes
        where = f" in {n} process{'es' if n != 1 else ''}" if n else ""
        return f"{k.setting} read back as {k.read_back or k.asked or 'asked'}{where}{how}"
    if k.state == "mismatch":
        got = k.read_back if k.read_back is not None else "nothing"
        return f"{k.setting} asked {k.asked or 'a value'}, read back {got}{how}"
    if k.state == "unverifiable":
        why = k.why or k.how
        return f"{k.setting} cannot be read back" + (f": {why}" if why else "")
    return f"{k.setting}: {k.state}{how}"


def unsaid_mismatch(knobs: Sequence[Knob], reason: str | None) -> str:
    """The mismatched read-backs a failed variant's reason does not already name ('' when it
    names each setting), so a reader sees the knob that failed without reading it twice."""
    return "; ".join(
        knob_text(k) for k in knobs if k.state == "mismatch" and k.setting not in (reason or "")
    )


@dataclass(frozen=True)
class VariantReport:
    """One variant against its base: what the run says of each, and the measures compared."""

    variant: AllocatorInfo
    base: AllocatorInfo | None  # None: the base is not in the run at all
    changes: tuple[Change, ...]  # one per measure either side has

    @property
    def name(self) -> str:
        return self.variant.name

    @property
    def base_name(self) -> str:
        return self.variant.base or ""

    @property
    def measured(self) -> bool:
        """Whether the variant itself has any measurement (else it failed or was skipped)."""
        return any(c.b is not None for c in self.changes)

    @property
    def base_measured(self) -> bool:
        return any(c.a is not None for c in self.changes)

    @property
    def state(self) -> str:
        return knob_state(self.variant.knobs)

    def change(self, key: str) -> Change | None:
        return next((c for c in self.changes if c.metric.key == key), None)


def _sample(res: Results, metric: Metric, name: str) -> Sample | None:
    results = res.service if metric.experiment == "service" else res.control
    return getattr(results[name], metric.key) if name in results else None


def variant_reports(res: Results) -> tuple[VariantReport, ...]:
    """Every variant of the run (failed ones too), each base's variants in spec order, the
    bases in spec order; empty when the run had none."""
    infos = {a.name: a for a in res.allocators}
    metrics = knob_metrics(res)
    out = []
    for name in res.grouped(res.names):
        v = infos[name]
        if not v.base:
            continue
        changes = []
        for m in metrics:
            a, b = _sample(res, m, v.base), _sample(res, m, name)
            if a is not None or b is not None:
                changes.append(Change(name, m, a, b, sides=(v.base, name)))
        out.append(VariantReport(v, infos.get(v.base), tuple(changes)))
    return tuple(out)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _breakable(text: str) -> str:
    """Escaped text that may wrap after its commas, underscores, dots and equals signs:
    settings and library names are long words that would otherwise widen the table."""
    out = _esc(text)
    for c in (",", "_", ".", "="):
        out = out.replace(c, c + "<wbr>")
    return out


def _setting(v: AllocatorInfo) -> str:
    """The variant's environment as code (MALLOC_CONF lists wrap after their commas)."""
    return "<br>".join(
        f"<code>{_breakable(f'{k}={val}')}</code>" for k, val in sorted(v.env.items())
    )


def _status(info: AllocatorInfo | None, name: str) -> str:
    if info is None:
        return f"{name} is not in the run"
    return f"{info.status}: {info.reason}" if info.reason else info.status


def _number(c: Change, s: Sample) -> str:
    """A value in its column's unit (the heading gives it): '410', '4.1', '1.97'."""
    return c.metric.fmt(s.center).partition(" ")[0]


def _share(rel: float | None) -> str:
    """The change as a share of the base's value, as compare prints it ('-3.7%'), with a
    second decimal below 0.1%, where a change can still be beyond a small A/A floor."""
    if rel is None:
        return ""
    if rel != 0 and abs(rel) < 0.001:
        return f"{rel * 100:+.2f}%"
    return f"{rel * 100:+.1f}%"


def _floor_text(x: float) -> str:
    return f"{x * 100:.2f}%" if x < 0.001 else f"{x * 100:.1f}%"


def _measure(c: Change | None, report: VariantReport) -> Cell:
    """'410 → 395' (base → variant), '-3.7%', 'changed', one a line, with the rule that
    decided as its title, in compare's words."""
    if c is None or c.b is None:
        return Cell("not measured")
    if c.a is None:
        return Cell(f"{_number(c, c.b)}; {report.base_name} not measured")
    lines = (
        f"{_number(c, c.a)} → {_number(c, c.b)}",
        _share(c.delta_rel) or "0.0%",
        c.verdict,
    )
    text = f'<span title="{_esc(c.rule_text)}">' + "<br>".join(map(_esc, lines)) + "</span>"
    return Cell(text, html=True)


def _variant_cell(r: VariantReport) -> Cell:
    """The variant and the stock allocator it changes, its setting, then whether the setting
    read back: as asked (in how many processes), unverifiable (with why) or mismatch; for a
    variant that did not run, its status and reason. How each setting was read is the
    read-back's title, with what the setting was seen to do. One cell, since Material gives
    every column a minimum width and the four measures need theirs."""
    how = "; ".join(
        f"{k.setting}: {k.how}" + (f", and {k.effect}" if k.effect else "")
        for k in r.variant.knobs
        if k.how
    )
    title = f' title="{_esc(how)}"' if how else ""
    lines = [_esc(f"{r.name} (variant of {r.base_name})"), _setting(r.variant)]

    def cell(text: str) -> Cell:
        said = f"<span{title}>{_breakable(text)}</span>"
        return Cell("<br>".join([*(x for x in lines if x), said]), html=True)

    if r.variant.status != "ok" or not r.measured:
        head = _status(r.variant, r.name)
        if r.variant.status == "ok":
            head = "ran, but the run recorded no measurements for it"
        extra = unsaid_mismatch(r.variant.knobs, r.variant.reason)
        return cell(f"{head}; mismatch: {extra}" if extra else head)
    knobs = r.variant.knobs
    if not knobs:
        return cell("no read-back recorded")
    if r.state == "verified":
        counts = {k.processes for k in knobs}
        n = counts.pop() if len(counts) == 1 else None
        return cell(f"read back as asked in {n} processes" if n else "read back as asked")
    odd = [k for k in knobs if k.state != "verified"]
    if len(knobs) == 1:  # the setting is right above: say why alone
        (k,) = odd
        detail = k.why or knob_text(k) if k.state == "unverifiable" else knob_text(k)
    else:
        detail = "; ".join(knob_text(k) for k in odd)
    return cell(f"{r.state}: {detail}")


def _floors(reports: Sequence[VariantReport], metrics: Sequence[Metric]) -> str:
    """'peak 0.44%, settled 0.03%, ...': the A/A floor of each measure of the table, since a
    floor is one pair's difference and differs from measure to measure."""
    out = []
    for m in metrics:
        floors = [
            f
            for r in reports
            if (c := r.change(m.key))
            for s in (c.a, c.b)
            if s is not None and (f := s.floor_rel) is not None
        ]
        if floors:
            out.append(f"{_HEADINGS[m.key][0].rsplit(' ', 1)[0]} {_floor_text(max(floors))}")
    return ", ".join(out)


def _rules_caption(reports: Sequence[VariantReport], metrics: Sequence[Metric]) -> str:
    """How the verdicts were decided, for the rules this table used."""
    rules = {c.rule for r in reports for c in r.changes}
    floors = _floors(reports, metrics)
    parts = []
    if "intervals" in rules:
        parts.append("with repeats, changed when the two 95% intervals do not overlap")
    if "interval" in rules:
        parts.append("a single value inside the other's 95% interval is unchanged")
    if "aa_floor" in rules:
        parts.append(
            "with a single value, changed when the difference exceeds the A/A pair's "
            "difference on that measure"
            + (f" ({floors})" if floors else "")
            + f", or {fmt_pct(MIN_FLOOR_REL)} where that is smaller"
        )
    if "tie_rel" in rules:
        parts.append(
            f"with a single value and no A/A pair, changed when the difference exceeds the "
            f"stated {fmt_pct(TIE_REL)} of the larger value"
        )
    if not parts:
        return ""
    return " Verdicts by the noise rule of allocstudy compare: " + "; ".join(parts) + "."


#: How the runner opens its note on the control (bench.allocators.knobs.CONTROL_NOTE).
_NOT_IN_CONTROL = "not checked in the control"


def _control_caption(reports: Sequence[VariantReport], metrics: Sequence[Metric]) -> str:
    """The C++ control column's unit in full, and what the run says of the settings there,
    once: its throughput is the knob's only if the control ran with the setting too."""
    text = "".join(
        f" {_HEADINGS[m.key][0]}: {_HEADINGS[m.key][1]}."
        for m in metrics
        if m.experiment == "control"
    )
    notes = list(dict.fromkeys(k.control for r in reports for k in r.variant.knobs if k.control))
    for note in notes:
        rest = note.removeprefix(_NOT_IN_CONTROL)
        text += (
            f" The settings were not checked in the C++ control{rest}."
            if rest != note
            else f" In the C++ control: {note}."
        )
    return text


def knobs_table(res: Results) -> str:
    """One row per variant: each measure against its base (both values, the change, the
    verdict) and whether its setting read back as asked; "" without variants, so a run that
    tried no knob shows no empty table (the sentence says why)."""
    reports = variant_reports(res)
    if not reports:
        return ""
    metrics = knob_metrics(res)
    rows = [[_variant_cell(r), *(_measure(r.change(m.key), r) for m in metrics)] for r in reports]
    return html_table(
        [
            Column("variant", False, "the variant, its setting and whether it read back as asked"),
            *(Column(_HEADINGS[m.key][0], True, _HEADINGS[m.key][1]) for m in metrics),
        ],
        rows,
        table_id="knobs-table",
        caption="Each variant against its own stock allocator: the base's value → the "
        "variant's, the change as a share of the base's, and the verdict (point at a cell for "
        "the rule that decided). Under each variant, its setting and whether it read back as "
        "asked inside the service's processes (point at it for how)."
        + _control_caption(reports, metrics)
        + _rules_caption(reports, metrics),
    )
