"""The article's sections, one module each, listed in page order: the one registry.

A page collects its values, sentences, charts and tables from `SECTIONS` (bench.report.study),
so a new section is one module here, its line in `SECTIONS`, and its placeholders in the
article template (docs/guide/writing-pages.md). Each module holds one `Section`
(bench.report.section) and everything that is that section's alone: the numbers it computes
once from the loaded run, its model, its sentences, its charts with their captions, its
tables. What several sections share is the core's (bench.report). A section over about 500
lines is a package of the same concept's parts instead: `leak/` and `knobs/` hold `model`
(the reduction and its table), `words` (the sentences) and, for the leak, `chart`, with the
section itself in the package's `__init__`.

Modules, in page order: identity (the run, host and spec the page shows), workload (what the
requests do, and whether the run hosted an app of its own), staircase (memory over time, the
live payload), method (the spec as run, the phases, and the sentences about each step),
calibration (the rate the load was sized to), allocators (versions, per-allocator values, the
mimalloc version caveat), settling (return timers, time to settle), trust (what was not
measured, noise, the A/A pair, disturbed and flagged repeats), headline (peak and settled,
ranked, and whether the sampler caught the peak), fingerprints (keep versus return), leak
(leak or retention), kept (where the kept memory sits: the allocators' own statistics),
burst (after the burst: a trough, then the same burst again), latency, limit (under a memory
limit), recycling (recycled workers), control (the C++ control), knobs (variants against their
base), data (the full table, the downloads), guidance (what it means), provenance (the run's
record, the proof each allocator was loaded).
"""

from __future__ import annotations

from typing import Any

from bench.report.section import Section
from bench.report.sections.allocators import AllocatorsSection
from bench.report.sections.burst import BurstSection
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
    BurstSection(),
    LatencySection(),
    LimitSection(),
    RecyclingSection(),
    ControlSection(),
    KnobsSection(),
    DataSection(),
    GuidanceSection(),
    ProvenanceSection(),
)
