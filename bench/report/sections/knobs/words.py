"""Sentences about the variants: what each knob moved against its own stock allocator.

The verdicts are the model's (sections.knobs.model: the noise rule of `allocstudy compare`).
A single variant gets a sentence of its own ("Against jemalloc, jemalloc-decay0 settled 12% lower,
beyond the noise; its p99 latency did not move"); several are summarised measure by measure
("Against their own stock allocators, settled memory fell beyond the noise with a (27%) and
b (12%), and rose with c (22%). ..."), which stays readable however many a spec tries. A
variant that did not run is named with its reason. `read_back` says whose settings read back
as asked and whose could not be checked, and why. A run without variants is said to have
none, so the section never stands empty.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.report.aggregate import Results
from bench.report.changes import Change
from bench.report.prose.rankings import pct_text
from bench.report.sections.knobs.model import (
    VariantReport,
    knob_text,
    unsaid_mismatch,
    variant_reports,
)
from bench.report.stats import too_noisy
from bench.report.units import join_names, md_safe

__all__ = [
    "NO_VARIANTS",
    "knobs",
    "measure_sentence",
    "moved_text",
    "read_back",
    "read_back_text",
    "summary",
    "variant_sentence",
]

#: How an unmoved measure is named after "its".
_NOUNS = {
    "peak": "peak",
    "settled": "settled memory",
    "p99": "p99 latency",
    "allocs_per_s": "C++ control throughput",
    "allocs_per_cpu_s": "C++ control throughput per CPU-second",
}

NO_VARIANTS = (
    "This run had no variants: its spec changed no allocator's settings, so every allocator "
    "here ran with its stock defaults. A spec adds one as an allocator with a `base` and the "
    "`env` that sets its knob, and this section then holds it against its base."
)


def moved_text(c: Change) -> str:
    """What one measure did, as a verb phrase: 'settled 12% lower', 'allocated 8% faster in
    the C++ control'."""
    rel = c.delta_rel
    if rel is None:  # the base's value is zero: no share of it to give
        return f"moved its {_NOUNS[c.metric.key]} from {c.texts()['a']} to {c.texts()['b']}"
    pct = pct_text(abs(rel))
    up = rel > 0
    if c.metric.experiment == "control":
        return f"allocated {pct} {'faster' if up else 'slower'} in the C++ control"
    way = "higher" if up else "lower"
    if c.metric.key == "peak":
        return f"peaked {pct} {way}"
    if c.metric.key == "settled":
        return f"settled {pct} {way}"
    return f"had a {_NOUNS[c.metric.key]} {pct} {way}"


def _nouns(changes: Sequence[Change]) -> str:
    return join_names([_NOUNS[c.metric.key] for c in changes])


def _its(changes: Sequence[Change], what: str) -> str:
    """'its peak was too noisy to tell', 'its peak and p99 latency were ...'."""
    verb = "was" if len(changes) == 1 else "were"
    return f"its {_nouns(changes)} {verb} {what}"


def _not_run(r: VariantReport) -> str:
    """A variant without measurements: its status and the runner's reason, and the setting
    that read back otherwise when the reason does not already name it."""
    status = r.variant.status
    why = r.variant.reason or (
        "the run recorded no measurements for it" if status == "ok" else "no reason recorded"
    )
    extra = unsaid_mismatch(r.variant.knobs, why)
    extra = f" (its setting {md_safe(extra)})" if extra else ""
    said = "was not measured" if status == "ok" else status
    return f"{md_safe(r.name)} {md_safe(said)}: {md_safe(why)}{extra}."


def variant_sentence(r: VariantReport) -> str:
    """What one variant moved against its base, or why it could not be compared.

    The measures that moved come first, with how far and which way; then those that did not,
    those too noisy to tell (an interval wider than compare.NOISY_REL), and those only one of
    the two has."""
    v, base = md_safe(r.name), md_safe(r.base_name)
    if r.variant.status != "ok" or not r.measured:
        return _not_run(r)
    if not r.base_measured:
        status = r.base.status if r.base else "not in the run"
        return (
            f"{v} ran, but its base {base} was not measured ({md_safe(status)}), so there is "
            "nothing to hold it against."
        )
    both = [c for c in r.changes if c.a is not None and c.b is not None]
    moved = [c for c in both if c.changed]
    shaky = [c for c in both if not c.changed and any(too_noisy(s) for s in (c.a, c.b) if s)]
    still = [c for c in both if not c.changed and c not in shaky]
    one_sided = [c for c in r.changes if c.a is None or c.b is None]
    if moved:
        head = f"Against {base}, {v} {join_names([moved_text(c) for c in moved])}, beyond the noise"
        rest = [f"its {_nouns(still)} did not move"] if still else []
    elif still:
        head, rest = f"Against {base}, {v}'s {_nouns(still)} did not move beyond the noise", []
    else:
        head, rest = f"Against {base}, {v}", []
    if shaky:
        rest.append(_its(shaky, "too noisy to tell"))
    if one_sided:
        rest.append(_its(one_sided, "measured for only one of the two"))
    if not moved and not still:
        return head + ": " + "; ".join(rest) + "."
    return "; ".join([head, *rest]) + "."


def read_back_text(reports: Sequence[VariantReport]) -> str:
    """Whose settings read back as asked, whose could not be read back and why, and whose
    read back otherwise; said only of the variants that ran ('' when none did)."""
    ran = [r for r in reports if r.variant.status == "ok" and r.measured]
    verified = [md_safe(r.name) for r in ran if r.state == "verified"]
    out = []
    if verified:
        whose = "The setting of" if len(verified) == 1 else "The settings of"
        out.append(
            f"{whose} {join_names(verified)} read back as asked inside the measured processes."
        )
    for r in ran:
        v = md_safe(r.name)
        if r.state == "unverifiable":
            why = "; ".join(knob_text(k) for k in r.variant.knobs if k.state == "unverifiable")
            out.append(
                f"The setting of {v} could not be checked ({md_safe(why)}), so whether it took "
                "effect is not proven."
            )
        elif r.state == "mismatch":
            got = "; ".join(knob_text(k) for k in r.variant.knobs if k.state == "mismatch")
            out.append(
                f"The setting of {v} read back otherwise ({md_safe(got)}): its numbers are not "
                "the knob's."
            )
        elif r.state == "not recorded":
            out.append(
                f"The run recorded no read-back of the setting of {v}, so whether it took effect "
                "is not proven."
            )
        elif r.state != "verified":
            out.append(f"The setting of {v} read back as {md_safe(r.state)}.")
    return " ".join(out)


#: The order measures are summarised in (settled first, the headline's measure), and how
#: each is the subject of a sentence.
_SUBJECTS = {
    "settled": "settled memory",
    "peak": "the peak",
    "p99": "the p99 latency",
    "allocs_per_s": "the C++ control's throughput",
    "allocs_per_cpu_s": "the C++ control's throughput per CPU-second",
}


def _listing(changes: Sequence[Change]) -> str:
    """'a (27%), b (20%) and c (3.7%)': the variants, the largest change first."""
    ordered = sorted(changes, key=lambda c: -abs(c.delta_rel or 0.0))
    return join_names(
        [
            f"{md_safe(c.allocator)} ({pct_text(abs(c.delta_rel))})"
            if c.delta_rel is not None
            else md_safe(c.allocator)
            for c in ordered
        ]
    )


def measure_sentence(key: str, changes: Sequence[Change], *, lead: bool) -> str:
    """'Settled memory fell with a (27%) and b (12%), and rose with c (22%).' over the
    changes of one measure that moved beyond the noise; `lead` opens the paragraph, saying
    what each variant is held against and by what rule."""
    down = [c for c in changes if (c.delta or 0.0) < 0]
    up = [c for c in changes if (c.delta or 0.0) > 0]
    noise = " beyond the noise" if lead else ""
    parts = [f"fell{noise} with {_listing(down)}"] if down else []
    if up:
        parts.append(f"rose{'' if down else noise} with {_listing(up)}")
    subject = _SUBJECTS[key]
    if lead:
        return f"Against their own stock allocators, {subject} " + ", and ".join(parts) + "."
    return f"{subject[0].upper()}{subject[1:]} " + ", and ".join(parts) + "."


def summary(measured: Sequence[VariantReport]) -> str:
    """The variants that ran, measure by measure: which moved it beyond the noise, which
    way and how far; then the measures no variant moved and the variants that moved none."""
    keys = [k for k in _SUBJECTS if any(r.change(k) for r in measured)]
    out: list[str] = []
    quiet: list[str] = []
    for key in keys:
        cs = [c for r in measured if (c := r.change(key)) and c.a and c.b and c.changed]
        if cs:
            out.append(measure_sentence(key, cs, lead=not out))
        else:
            quiet.append(_NOUNS[key])
    if quiet:
        out.append(f"No variant moved its {join_names(quiet, 'or')} beyond the noise.")
    still = [md_safe(r.name) for r in measured if not any(c.changed for c in r.changes)]
    if still and len(still) < len(measured):
        out.append(f"{join_names(still)} moved nothing beyond the noise.")
    shaky = [
        f"the {_NOUNS[c.metric.key]} of {md_safe(r.name)}"
        for r in measured
        for c in r.changes
        if c.a and c.b and not c.changed and (too_noisy(c.a) or too_noisy(c.b))
    ]
    if shaky:
        out.append(f"Too noisy to tell: {join_names(shaky)}.")
    return " ".join(out)


def knobs(res: Results) -> str:
    """What the variants moved against their bases, and those that could not be compared and
    why; or that the run had no variants (what their settings read back as is `read_back`).

    One variant gets a sentence of its own (variant_sentence); several are summarised
    measure by measure (summary), which stays readable however many a spec tries."""
    reports = variant_reports(res)
    if not reports:
        return NO_VARIANTS
    compared = [r for r in reports if r.variant.status == "ok" and r.measured and r.base_measured]
    said = [summary(compared)] if len(compared) > 1 else []
    said += [variant_sentence(r) for r in reports if r not in compared or len(compared) == 1]
    return " ".join(t for t in said if t)


def read_back(res: Results) -> str:
    """What the read-backs proved of the variants that ran ('' without variants): a page
    places it apart from `knobs`, after the table, so neither paragraph runs too long."""
    return read_back_text(variant_reports(res))
