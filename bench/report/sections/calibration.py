"""The calibration: how the run sized the load to the machine ({{ say.calibration }}).

A run of a spec with `service.calibrate` first ramps the load on one allocator and runs the
study at a share of the highest rate the app held (bench.experiments.calibrate); the
manifest's `calibration` records the steps. The reader needs to know the rate was found, not
chosen, on which allocator, and what the app could not hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.section import Entries, Loaded, Section
from bench.report.units import fmt_pct, join_names, md_safe

__all__ = ["CalibrationSection", "calibration_sentence"]


def _rate(x: float) -> str:
    return f"{x:,.3g}" if x < 100 else f"{x:,.0f}"


def calibration_sentence(manifest: dict[str, Any]) -> str:
    """'' without a calibration; else the ramp, what held, what did not, the rate used."""
    cal = manifest.get("calibration")
    if not isinstance(cal, dict) or not cal.get("steps"):
        return ""
    steps = [s for s in cal["steps"] if isinstance(s, dict)]
    rates = join_names([_rate(float(s["rate"])) for s in steps])
    head = (
        f"The rate was found, not chosen: before measuring, the load was ramped on "
        f"{md_safe(str(cal.get('allocator')))} in steps of {cal.get('step_s', 0):g} s at "
        f"{rates} requests/s, each step held when the app answered 95% of its rate with a p99 "
        f"under {cal.get('p99_bound_ms', 0):,.0f} ms."
    )
    found = cal.get("found_rps")
    if found is None:
        first = steps[0]
        return (
            f"{head} It did not hold even the first step (it answered {first['answered']} of "
            f"{first['requests']} requests), so nothing was measured."
        )
    missed = next((s for s in steps if not s.get("held")), None)
    held = next(s for s in steps if float(s["rate"]) == float(found))
    p99 = held.get("p99_ms")
    hold = f"It held {_rate(float(found))} requests/s" + (
        f" (p99 {p99:,.0f} ms)" if p99 is not None else ""
    )
    if missed is not None:
        share = missed["answered"] / missed["requests"] if missed.get("requests") else 0.0
        hold += (
            f" but not {_rate(float(missed['rate']))}, where it answered {fmt_pct(share)} of "
            "what was sent"
        )
    else:
        hold += ", the top of the ramp: it may hold more"
    return (
        f"{head} {hold}; every repeat ran at {fmt_pct(float(cal['fraction']))} of it, "
        f"{_rate(float(cal['rate']))} requests/s."
    )


@dataclass(frozen=True)
class Calibration:
    manifest: dict[str, Any]


class CalibrationSection(Section[Calibration]):
    name = "calibration"
    title = "The experiment"

    def compute(self, loaded: Loaded) -> Calibration:
        return Calibration(loaded.run.manifest)

    def sentences(self, data: Calibration) -> Entries:
        return {"calibration": lambda: calibration_sentence(data.manifest)}
