"""Two runs side by side: what changed between them, and whether it is outside the noise.

Both the `allocstudy compare` command and the site's comparison page are built from one
`RunComparison`, so a terminal and a page never disagree about a number or a verdict.

The noise rule is the article's own (bench.report.stats.ties), applied across the two runs:
when both runs repeated a measure, it changed when the two 95% intervals do not overlap; a
single value inside the other run's interval has not changed; otherwise the difference is held
against the A/A noise floor of either run (the larger, when both had an A/A pair) or, without
one, the stated TIE_REL. Every verdict names the rule that decided it, because "unchanged"
means less when it rests on a stated 5% than on three repeats a side.

Differences of the two manifests (spec, host, tool, versions) are computed here too, and
listed before the changes: a change between runs on two machines is not an allocator's doing.
Pure functions over loaded runs; no printing, no files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench.report.aggregate import Results, aggregate
from bench.report.runfolders import Run
from bench.report.stats import MIN_FLOOR_REL, TIE_REL, Sample, ties, too_noisy
from bench.report.units import fmt_mb, fmt_mops, fmt_mops_cpu, fmt_ms, fmt_pct, fmt_ratio

__all__ = [
    "METRICS",
    "Change",
    "Difference",
    "Metric",
    "RULES",
    "OnlyIn",
    "RunComparison",
    "by_verdict",
    "compare_results",
    "compare_runs",
    "decide",
    "label",
    "manifest_differences",
]

Experiment = Literal["service", "control"]
#: The rule that decided a verdict (see `decide`).
Rule = Literal["equal", "intervals", "interval", "aa_floor", "tie_rel", "missing"]

#: What each rule means, for a legend under a table of changes.
RULES: dict[str, str] = {
    "intervals": "both runs repeated the measure: changed when the two 95% intervals do not "
    "overlap",
    "interval": "one run repeated it: unchanged when the other run's single value lies "
    "inside its 95% interval",
    "aa_floor": "a single value on a side: changed when the difference exceeds the A/A noise "
    "floor (one allocator run twice) of either run, the larger when both have one, and "
    f"never less than {fmt_pct(MIN_FLOOR_REL)}",
    "tie_rel": f"a single value on a side and no A/A pair in either run: changed when the "
    f"difference exceeds the stated {fmt_pct(TIE_REL)} of the larger value",
}


@dataclass(frozen=True)
class Metric:
    """One measure compared: where it lives in Results, how it prints, which way is better."""

    experiment: Experiment
    key: str  # the field of ServiceResult or ControlResult
    label: str
    unit: Literal["bytes", "ratio", "ms", "per_s", "per_cpu_s"]
    better: Literal["lower", "higher"]

    @property
    def name(self) -> str:
        return f"{self.experiment} {self.label}"

    def fmt(self, x: float | None) -> str:
        return _FORMAT[self.unit](x)


_FORMAT: dict[str, Callable[[float | None], str]] = {
    "bytes": fmt_mb,
    "ratio": fmt_ratio,
    "ms": fmt_ms,
    "per_s": fmt_mops,
    "per_cpu_s": fmt_mops_cpu,
}

#: Every measure compared, in the order they are listed.
METRICS: tuple[Metric, ...] = (
    Metric("service", "peak", "peak", "bytes", "lower"),
    Metric("service", "settled", "settled", "bytes", "lower"),
    Metric("service", "overhead_peak", "overhead at peak", "ratio", "lower"),
    Metric("service", "overhead_settled", "overhead settled", "ratio", "lower"),
    Metric("service", "p50", "p50 latency", "ms", "lower"),
    Metric("service", "p95", "p95 latency", "ms", "lower"),
    Metric("service", "p99", "p99 latency", "ms", "lower"),
    Metric("control", "allocs_per_s", "throughput per s", "per_s", "higher"),
    Metric("control", "allocs_per_cpu_s", "throughput per CPU-second", "per_cpu_s", "higher"),
    Metric("control", "settled", "settled", "bytes", "lower"),
)


def decide(a: Sample, b: Sample) -> tuple[bool, Rule]:
    """Whether b changed from a beyond the noise, and the rule that decided it.

    The verdict is `not stats.ties(a, b)`; the rule is read off the same branches ties
    takes, so the two cannot disagree (a test holds them together).
    """
    changed = not ties(a, b)
    if a.center == b.center:
        return changed, "equal"
    ia, ib = a.interval, b.interval
    if ia is not None and ib is not None:
        return changed, "intervals"
    one = ia or ib
    single = b if ia is not None else a
    if one is not None and one[0] <= single.center <= one[1]:
        return changed, "interval"
    if a.floor_rel is not None or b.floor_rel is not None:
        return changed, "aa_floor"
    return changed, "tie_rel"


def _floor(a: Sample, b: Sample) -> float | None:
    """The A/A floor the verdict used: the larger of the runs', never under MIN_FLOOR_REL."""
    floors = [f for f in (a.floor_rel, b.floor_rel) if f is not None]
    return max(MIN_FLOOR_REL, *floors) if floors else None


def _fmt_floor(x: float | None) -> str:
    """A noise floor: one decimal, since floors are often below 1%."""
    return "not recorded" if x is None else f"{x * 100:.1f}%"


def _noise(s: Sample) -> str:
    """A sample's interval half-width, marked when it is too wide to rank (compare.NOISY_REL)."""
    rel = s.half_width_rel
    if rel is None:
        return "one repeat"
    return f"±{rel * 100:.1f}%" + (", too noisy" if too_noisy(s) else "")


@dataclass(frozen=True)
class Change:
    """One measure of one allocator in both runs: the values, the change, the verdict.

    `sides` names A and B in the rule's words: the runs by default; the article's knobs
    section holds a variant (B) against its base (A) with their allocators' names.
    """

    allocator: str
    metric: Metric
    a: Sample | None
    b: Sample | None
    sides: tuple[str, str] = ("A", "B")

    @property
    def before(self) -> float | None:
        return self.a.center if self.a else None

    @property
    def after(self) -> float | None:
        return self.b.center if self.b else None

    @property
    def delta(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        return self.b.center - self.a.center

    @property
    def delta_rel(self) -> float | None:
        """The change as a fraction of run A's value (None when A is 0 or either is absent)."""
        if self.a is None or self.b is None or self.a.center == 0:
            return None
        return (self.b.center - self.a.center) / abs(self.a.center)

    @property
    def decision(self) -> tuple[bool, Rule] | None:
        if self.a is None or self.b is None:
            return None
        return decide(self.a, self.b)

    @property
    def changed(self) -> bool | None:
        """True outside the noise, False within it, None when one run did not measure it."""
        d = self.decision
        return None if d is None else d[0]

    @property
    def rule(self) -> Rule:
        d = self.decision
        return "missing" if d is None else d[1]

    @property
    def verdict(self) -> str:
        """ "changed", "unchanged" or "not comparable" (measured in one run only)."""
        return {True: "changed", False: "unchanged", None: "not comparable"}[self.changed]

    @property
    def direction(self) -> Literal["better", "worse"] | None:
        """Which way a change went, by the measure's own sense (lower memory is better)."""
        if not self.changed or self.delta is None:
            return None
        lower = self.delta < 0
        return "better" if lower == (self.metric.better == "lower") else "worse"

    @property
    def rule_text(self) -> str:
        """The rule that decided, in words, with the numbers it used."""
        a, b = self.a, self.b
        name_a, name_b = self.sides
        if a is None or b is None:
            missing = name_a if a is None else name_b
            if self.sides == ("A", "B"):
                return f"not measured in run {missing}"
            return f"{missing} not measured"
        rule = self.rule
        if rule == "equal":
            return "identical"
        if rule == "intervals":
            apart = "apart" if self.changed else "overlap"
            return f"95% intervals {apart} ({name_a} {_noise(a)}, {name_b} {_noise(b)})"
        if rule == "interval":
            which, wide = (name_a, a) if a.interval is not None else (name_b, b)
            return f"inside {which}'s 95% interval ({_noise(wide)})"
        side = "beyond" if self.changed else "within"
        if rule == "aa_floor":
            return f"{side} A/A floor {_fmt_floor(_floor(a, b))}"
        return f"{side} stated {fmt_pct(TIE_REL)}"

    def texts(self) -> dict[str, str]:
        """The row as printed: both values, the change (absolute and %), verdict and rule."""
        d, rel = self.delta, self.delta_rel
        sign = "" if d is None or d == 0 else "+" if d > 0 else "-"
        return {
            "allocator": self.allocator,
            "measure": self.metric.name,
            "a": self.metric.fmt(self.before) if self.a else "not measured",
            "b": self.metric.fmt(self.after) if self.b else "not measured",
            "change": "" if d is None else f"{sign}{self.metric.fmt(abs(d))}",
            "change_pct": "" if rel is None else f"{rel * 100:+.1f}%",
            "verdict": self.verdict,
            "rule": self.rule_text,
        }

    def to_json(self) -> dict[str, Any]:
        def side(s: Sample | None) -> dict[str, Any] | None:
            if s is None:
                return None
            iv = s.interval
            return {
                "value": s.center,
                "n": s.n,
                "interval": list(iv) if iv else None,
                "floor_rel": s.floor_rel,
            }

        return {
            "allocator": self.allocator,
            "experiment": self.metric.experiment,
            "metric": self.metric.key,
            "label": self.metric.label,
            "unit": self.metric.unit,
            "a": side(self.a),
            "b": side(self.b),
            "change": self.delta,
            "change_rel": self.delta_rel,
            "changed": self.changed,
            "verdict": self.verdict,
            "direction": self.direction,
            "rule": self.rule,
            "rule_text": self.rule_text,
            "text": self.texts(),
        }


@dataclass(frozen=True)
class OnlyIn:
    """An allocator with results in one run only, and what the other run says of it."""

    allocator: str
    run: Literal["A", "B"]
    other: str  # "not in the run", or "failed: <reason>" and the like

    def to_json(self) -> dict[str, str]:
        return {"allocator": self.allocator, "run": self.run, "other": self.other}


@dataclass(frozen=True)
class Difference:
    """One fact of the manifests that differs between the runs (spec key, host, version)."""

    section: str  # "spec", "host", "tool", "confounds", "allocator <name>"
    key: str
    a: str | None
    b: str | None

    @property
    def what(self) -> str:
        return f"{self.section} {self.key}"

    def texts(self) -> tuple[str, str]:
        """Both values as shown: "(absent)" for none, a hash cut to its first 12 digits."""
        return _shown(self.a), _shown(self.b)

    def to_json(self) -> dict[str, str | None]:
        return {"section": self.section, "key": self.key, "a": self.a, "b": self.b}


@dataclass(frozen=True)
class RunComparison:
    """Two runs compared: their names, what differs in how they ran, and every change."""

    a: str  # "<study>/<run id>"
    b: str
    differences: tuple[Difference, ...]
    changes: tuple[Change, ...]
    only: tuple[OnlyIn, ...]

    @property
    def same_conditions(self) -> bool:
        return not self.differences

    def rules_used(self) -> dict[str, str]:
        """The rules that decided at least one verdict, with what they mean (a legend)."""
        used = {c.rule for c in self.changes}
        return {r: text for r, text in RULES.items() if r in used}

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "tie_rel": TIE_REL,
            "differences": [d.to_json() for d in self.differences],
            "changes": [c.to_json() for c in self.changes],
            "only": [o.to_json() for o in self.only],
        }


def _has_data(res: Results, name: str) -> bool:
    return name in res.service or name in res.control


def _absent_reason(res: Results, name: str) -> str:
    info = next((a for a in res.allocators if a.name == name), None)
    if info is None:
        return "not in the run"
    return f"{info.status}: {info.reason}" if info.reason else info.status


def _sample(res: Results, metric: Metric, name: str) -> Sample | None:
    results = res.service if metric.experiment == "service" else res.control
    return getattr(results[name], metric.key) if name in results else None


def compare_results(a: Results, b: Results) -> tuple[tuple[Change, ...], tuple[OnlyIn, ...]]:
    """Every measure of every allocator both runs measured, and the allocators only one did.

    Allocators come in run A's order, then B's own; a measure neither run has for an
    allocator is left out, one that only one run has is a Change without a verdict.
    """
    names = list(dict.fromkeys([*a.names, *b.names]))
    changes: list[Change] = []
    only: list[OnlyIn] = []
    for name in names:
        in_a, in_b = _has_data(a, name), _has_data(b, name)
        if not (in_a and in_b):
            if in_a or in_b:
                side: Literal["A", "B"] = "A" if in_a else "B"
                only.append(OnlyIn(name, side, _absent_reason(b if in_a else a, name)))
            continue
        for metric in METRICS:
            sa, sb = (_sample(r, metric, name) for r in (a, b))
            if sa is None and sb is None:
                continue
            changes.append(Change(name, metric, sa, sb))
    return tuple(changes), tuple(only)


def _flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A nested mapping as dotted keys to compact JSON texts (lists stay whole)."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value if isinstance(value, str) else json.dumps(value, sort_keys=True)}


def _diff(section: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> list[Difference]:
    fa, fb = _flatten(a), _flatten(b)
    keys = list(dict.fromkeys([*fa, *fb]))
    return [Difference(section, k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]


_HEX = re.compile(r"[0-9a-f]{40,}")


def _shown(value: str | None) -> str:
    if value is None:
        return "(absent)"
    return value[:12] if _HEX.fullmatch(value) else value


#: Machine conditions a run records that change what it measures (CPU pressure always
#: differs and is judged per repeat, so it is not listed).
_CONFOUNDS = ("cgroup_mode", "swap_bytes", "governor", "python_malloc")
#: What identifies an allocator's code in a run.
_ALLOCATOR_FACTS = ("version", "sha256", "library", "env")


def manifest_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[Difference, ...]:
    """What differs between two manifests in how the runs were made, most telling first.

    The spec hash, then the spec keys that differ; the host (CPU, cores, memory, kernel,
    glibc, Python); the tool's version and commit; the machine conditions that change
    memory (cgroup mode, THP as run, swap, governor); and for each allocator both runs list,
    its version, library and the library's hash.
    """
    out: list[Difference] = []
    if a.get("spec_sha256") != b.get("spec_sha256"):
        out.append(Difference("spec", "hash", a.get("spec_sha256"), b.get("spec_sha256")))
    sets = [", ".join(m.get("spec_overrides") or []) or None for m in (a, b)]
    if sets[0] != sets[1]:  # made with --set: the run differs from its spec file
        out.append(Difference("spec", "--set", sets[0], sets[1]))
    out += _diff("spec", a.get("spec") or {}, b.get("spec") or {})
    out += _diff("host", a.get("host") or {}, b.get("host") or {})
    tool = ("version", "git_commit", "git_dirty")
    ta, tb = a.get("tool") or {}, b.get("tool") or {}
    out += _diff("tool", {k: ta.get(k) for k in tool}, {k: tb.get(k) for k in tool})

    def confounds(m: Mapping[str, Any]) -> dict[str, Any]:
        c = m.get("confounds") or {}
        return {**{k: c.get(k) for k in _CONFOUNDS}, "thp": (c.get("thp") or {}).get("during")}

    out += _diff("confounds", confounds(a), confounds(b))
    allocs_b = {e.get("name"): e for e in b.get("allocators") or []}
    for entry in a.get("allocators") or []:
        other = allocs_b.get(entry.get("name"))
        if other is None:
            continue
        out += _diff(
            f"allocator {entry.get('name')}",
            {k: entry.get(k) for k in _ALLOCATOR_FACTS},
            {k: other.get(k) for k in _ALLOCATOR_FACTS},
        )
    return tuple(out)


def label(run: Run) -> str:
    """How a run is named in a comparison: `<study>/<run id>`."""
    return f"{run.ref.study}/{run.ref.run_id}"


def compare_runs(
    a: Run, b: Run, *, results: tuple[Results, Results] | None = None
) -> RunComparison:
    """Compare run B with run A (`results`: their aggregates, when already computed)."""
    res_a, res_b = results or (aggregate(a), aggregate(b))
    changes, only = compare_results(res_a, res_b)
    return RunComparison(
        a=label(a),
        b=label(b),
        differences=manifest_differences(a.manifest, b.manifest),
        changes=changes,
        only=only,
    )


def by_verdict(changes: Iterable[Change]) -> dict[str, int]:
    """How many changes of each verdict (for a one-line summary)."""
    out: dict[str, int] = {}
    for c in changes:
        out[c.verdict] = out.get(c.verdict, 0) + 1
    return out
