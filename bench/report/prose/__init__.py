"""Sentences whose comparative words are computed from the results (bench.report.prose.memory
holds them all until they are split into one module per sentence family)."""

from bench.report.prose.memory import *  # noqa: F403
from bench.report.prose.memory import __all__, control_measure, evidence, not_measured  # noqa: F401
