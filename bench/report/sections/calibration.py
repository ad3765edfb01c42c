"""The calibration: how the run sized the load to the machine ({{ say.calibration }})."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.report.calibration import calibration_sentence
from bench.report.section import Entries, Loaded, Section

__all__ = ["CalibrationSection"]


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
