"""A run's headline per allocator, as text: what the terminal and the README print.

The article's headline table (bench.report.experiment) is HTML; the terminal wants the same
numbers as plain cells. Both are computed from one `Results` (bench.report.aggregate), so
`allocstudy run`, `allocstudy show` and the article can never disagree: this module only
picks the measures a reader asks first (peak, settled, share given back, p99, the control's
throughput) and formats them with the article's own unit functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from bench.report.aggregate import Results
from bench.report.experiment import allocator_label, left_out_note
from bench.report.prose.rankings import value_text
from bench.report.units import NOT_MEASURED, fmt_given_back, fmt_mb, fmt_mops, fmt_ms

__all__ = ["HEADLINE_COLUMNS", "HeadlineRow", "headline_markdown", "headline_rows"]

#: Column titles, in the order of HeadlineRow's text fields.
HEADLINE_COLUMNS = ("allocator", "peak", "settled", "given back", "p99", "control", "flags")


@dataclass(frozen=True)
class HeadlineRow:
    """One allocator's headline: text cells, and the raw centres for --json readers."""

    allocator: str
    peak: str
    settled: str
    given_back: str
    p99: str
    control: str
    flags: str
    #: the same measures as numbers (bytes, fraction, ms, allocations/s); None: not measured
    numbers: dict[str, float | None]

    def cells(self) -> list[str]:
        return [
            self.allocator,
            self.peak,
            self.settled,
            self.given_back,
            self.p99,
            self.control,
            self.flags,
        ]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _flags(res: Results, name: str) -> str:
    """What the reader must know before trusting a row: flagged, disturbed or left-out
    repeats, each flag once with the repeats it applies to ("control repeats 0, 1: ...")."""
    by_flag: dict[tuple[str, str], list[int]] = {}
    for f in res.flagged:
        if f.allocator == name:
            by_flag.setdefault((f.experiment, f.flags), []).append(f.repeat)
    for d in res.disturbed:
        if d.allocator == name:
            by_flag.setdefault((d.experiment, "disturbed"), []).append(d.repeat)
    notes = [
        f"{exp} repeat{'s' if len(reps) > 1 else ''} {', '.join(map(str, sorted(set(reps))))}: "
        f"{text}"
        for (exp, text), reps in by_flag.items()
    ]
    r = res.service.get(name)
    if r is not None and (note := left_out_note(r, "service repeat")):
        notes.append(note)
    return "; ".join(notes) or "none"


def headline_rows(res: Results) -> list[HeadlineRow]:
    """Leanest settled first (the article's order), then allocators without service data."""
    order = res.grouped(sorted(res.service, key=lambda n: (res.service[n].settled.center, n)))
    rows = []
    for n in order:
        r = res.service[n]
        c = res.control.get(n)
        rate = c.allocs_per_s if c is not None else None
        rows.append(
            HeadlineRow(
                allocator=allocator_label(res, n),
                peak=value_text(r.peak, fmt_mb),
                settled=value_text(r.settled, fmt_mb),
                given_back=fmt_given_back(r.given_back.center if r.given_back else None),
                p99=value_text(r.p99, fmt_ms) if r.p99 else NOT_MEASURED,
                control=value_text(rate, fmt_mops) if rate else NOT_MEASURED,
                flags=_flags(res, n),
                numbers={
                    "peak_bytes": r.peak.center,
                    "settled_bytes": r.settled.center,
                    "given_back": r.given_back.center if r.given_back else None,
                    "p99_ms": r.p99.center if r.p99 else None,
                    "control_allocs_per_s": rate.center if rate else None,
                },
            )
        )
    for name, why in res.missing("service"):
        empty = {k: None for k in rows[0].numbers} if rows else {}
        rows.append(
            HeadlineRow(allocator_label(res, name), *([NOT_MEASURED] * 5), why, numbers=empty)
        )
    return rows


def headline_markdown(rows: list[HeadlineRow]) -> str:
    """The rows as a Markdown table (the README's headline, a pull request's comment)."""
    lines = [
        "| " + " | ".join(HEADLINE_COLUMNS) + " |",
        "|"
        + "|".join("---" if i == 0 else "---:" for i in range(len(HEADLINE_COLUMNS) - 1))
        + "|---|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row.cells()) + " |")
    return "\n".join(lines)
