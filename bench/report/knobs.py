"""What the knobs did: each variant held against its own stock allocator, measure by measure.

A variant is a stock allocator with a setting changed (the spec's `{name, base, env}`). The
stock defaults point different ways, so a variant is never ranked against the other stock
allocators (`Results.ranked` leaves it out); it is compared with its base alone, on the
measures an operator turns a knob for: peak, settled, p99 latency and the C++ control's
throughput. Each comparison is a `runcompare.Change` with the variant as B and its base as A,
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
from bench.report.compare import TIE_REL, Sample
from bench.report.datatable import Cell, Column, html_table
from bench.report.runcompare import METRICS, Change, Metric
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

#: The measure keys compared, and how the table heads them.
_HEADINGS = {
    "peak": "peak",
    "settled": "settled",
    "p99": "p99 latency",
    "allocs_per_s": "C++ control throughput",
    "allocs_per_cpu_s": "C++ control throughput per CPU-second",
}


def knob_metrics(res: Results) -> tuple[Metric, ...]:
    """Peak, settled and p99 of the service, and the control throughput the article ranks
    by (per CPU-second when the control had more threads than CPUs, prose.control)."""
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
    """One read-back in words: 'dirty_decay_ms read back as 0 (mallctl opt.dirty_decay_ms)'."""
    how = f" ({k.how})" if k.how else ""
    if k.state == "verified":
        return f"{k.setting} read back as {k.read_back or k.asked or 'asked'}{how}"
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


def _setting(v: AllocatorInfo) -> Cell:
    """The variant's environment as code, breakable after its commas (MALLOC_CONF lists)."""
    if not v.env:
        return Cell("none")
    parts = [
        "<code>" + _esc(f"{k}={val}").replace(",", ",<wbr>") + "</code>"
        for k, val in sorted(v.env.items())
    ]
    return Cell("<br>".join(parts), html=True)


def _status(info: AllocatorInfo | None, name: str) -> str:
    if info is None:
        return f"{name} is not in the run"
    return f"{info.status}: {info.reason}" if info.reason else info.status


def _measure(c: Change | None, report: VariantReport) -> Cell:
    """'220 MB against 250 MB', then '-12.0%, changed', the rule that decided as its title."""
    if c is None:
        return Cell("not measured")
    if c.b is None:
        return Cell("not measured")
    t = c.texts()
    if c.a is None:
        return Cell(f"{t['b']}; {report.base_name} not measured", sort=c.b.center)
    text = (
        f'<span title="{_esc(c.rule_text)}">{_esc(t["b"])} against {_esc(t["a"])}<br>'
        f"{_esc(t['change_pct'] or '0.0%')}, {_esc(c.verdict)}</span>"
    )
    return Cell(text, sort=c.b.center, html=True)


def _knob_cell(r: VariantReport) -> str:
    """Verified, unverifiable (with why) or mismatch, with each setting; for a variant that
    did not run, its status and reason first."""
    knobs = "; ".join(knob_text(k) for k in r.variant.knobs)
    state = r.state
    if r.variant.status != "ok" or not r.measured:
        head = _status(r.variant, r.name)
        if r.variant.status == "ok":
            head = "ran, but the run recorded no measurements for it"
        extra = unsaid_mismatch(r.variant.knobs, r.variant.reason)
        return f"{head}; mismatch: {extra}" if extra else head
    if not knobs:
        return "not recorded: the run holds no read-back of this setting"
    return f"{state}: {knobs}"


def _rules_caption(reports: Sequence[VariantReport]) -> str:
    """How the verdicts were decided, for the rules this table used."""
    rules = {c.rule for r in reports for c in r.changes}
    floors = [
        f
        for r in reports
        for c in r.changes
        for s in (c.a, c.b)
        if s is not None and (f := s.floor_rel) is not None
    ]
    parts = []
    if "intervals" in rules:
        parts.append("with repeats, changed when the two 95% intervals do not overlap")
    if "interval" in rules:
        parts.append("a single value inside the other's 95% interval is unchanged")
    if "aa_floor" in rules:
        parts.append(
            "with a single value, changed when the difference exceeds the A/A pair's "
            "difference on that measure" + (f" (up to {max(floors) * 100:.1f}%)" if floors else "")
        )
    if "tie_rel" in rules:
        parts.append(
            f"with a single value and no A/A pair, changed when the difference exceeds the "
            f"stated {fmt_pct(TIE_REL)} of the larger value"
        )
    if not parts:
        return ""
    return " Verdicts by the noise rule of allocstudy compare: " + "; ".join(parts) + "."


def knobs_table(res: Results) -> str:
    """One row per variant: its setting, each measure against its base (both values, the
    change, the verdict) and whether the setting read back as asked; "" without variants,
    so a run that tried no knob shows no empty table (the sentence says why)."""
    reports = variant_reports(res)
    if not reports:
        return ""
    metrics = knob_metrics(res)
    rows: list[list[Cell | str]] = []
    for r in reports:
        rows.append(
            [
                f"{r.name} (variant of {r.base_name})",
                _setting(r.variant),
                *(_measure(r.change(m.key), r) for m in metrics),
                _knob_cell(r),
            ]
        )
    return html_table(
        [
            Column("variant"),
            Column("setting"),
            *(
                Column(_HEADINGS[m.key], True, f"the variant against its base: {m.label}")
                for m in metrics
            ),
            Column(
                "read back",
                False,
                "whether the setting was read back as asked, inside the measured process",
            ),
        ],
        rows,
        table_id="knobs-table",
        caption="Each variant against its own stock allocator: the variant's value against "
        "the base's, the change as a share of the base's, and the verdict (point at it for the "
        "rule that decided). Read back: whether each setting read back as asked inside the "
        "measured process." + _rules_caption(reports),
    )
