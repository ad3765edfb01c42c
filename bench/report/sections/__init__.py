"""The article's sections, one module each, listed in page order: the one registry.

A page collects its values, sentences, charts and tables from `SECTIONS` (bench.report.study),
so a new section is one module here, its line in `SECTIONS`, and its placeholders in the
article template (docs/guide/writing-pages.md). Each module holds one `Section`
(bench.report.section): the numbers it computes once from the loaded run, and what it draws
from them.

Modules, in page order: identity (the run, host and spec the page shows), workload (what the
requests do), staircase (memory over time, the live payload), method (the spec as run, the
phases), calibration, allocators (versions, per-allocator values), settling (return timers,
time to settle), trust (what was not measured, noise, the A/A pair), headline (peak and
settled, ranked), fingerprints (keep versus return), leak (leak or retention), kept (where the kept
memory sits: the allocators' own statistics), latency,
limit (under a memory limit), recycling (recycled workers), control (the C++ control),
knobs (variants against their base), data (the full table, the downloads), guidance (what
it means), provenance.
"""

from __future__ import annotations

from typing import Any

from bench.report.section import Section
from bench.report.sections.allocators import AllocatorsSection
from bench.report.sections.calibration import CalibrationSection
from bench.report.sections.control import ControlSection
from bench.report.sections.data import DataSection
from bench.report.sections.fingerprints import FingerprintsSection
from bench.report.sections.guidance import GuidanceSection
from bench.report.sections.headline import HeadlineSection
from bench.report.sections.identity import IdentitySection
from bench.report.sections.kept import KeptSection
from bench.report.sections.knobs import KnobsSection
from bench.report.sections.latency import LatencySection
from bench.report.sections.leak import LeakSection
from bench.report.sections.limit import LimitSection
from bench.report.sections.method import MethodSection
from bench.report.sections.provenance import ProvenanceSection
from bench.report.sections.recycling import RecyclingSection
from bench.report.sections.settling import SettlingSection
from bench.report.sections.staircase import StaircaseSection
from bench.report.sections.trust import TrustSection
from bench.report.sections.workload import WorkloadSection

__all__ = ["SECTIONS"]

#: Every section of the article, in the order the page shows them.
SECTIONS: tuple[Section[Any], ...] = (
    IdentitySection(),
    WorkloadSection(),
    StaircaseSection(),
    MethodSection(),
    CalibrationSection(),
    AllocatorsSection(),
    SettlingSection(),
    TrustSection(),
    HeadlineSection(),
    FingerprintsSection(),
    LeakSection(),
    KeptSection(),
    LatencySection(),
    LimitSection(),
    RecyclingSection(),
    ControlSection(),
    KnobsSection(),
    DataSection(),
    GuidanceSection(),
    ProvenanceSection(),
)
