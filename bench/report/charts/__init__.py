"""The article's charts (bench.report.charts.staircase holds them all until they are split into
one module per chart family)."""

from bench.report.charts.staircase import *  # noqa: F403
from bench.report.charts.staircase import __all__  # noqa: F401
