"""One study's article material, computed lazily from its current run.

A StudyView owns everything a page can quote about one study: named values, sentences,
charts and tables. Charts render only when a page uses them, so a page that quotes two
numbers does not pay for five SVGs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

from bench.report import charts as ch
from bench.report import (
    experiment,
    fulltable,
    knobs,
    notes,
    prose,
    provenance,
    recycling,
    settling,
)
from bench.report.aggregate import Results, aggregate
from bench.report.leak import leak_results, leak_table
from bench.report.limit import limit_run, limit_table
from bench.report.live import LivePayload, live_payload
from bench.report.lockcheck import LockCheck, check_lock
from bench.report.run import Freshness, Run, Study, check_freshness, load_run
from bench.report.values import named_values

__all__ = ["StudyView"]


class StudyView:
    """The quotable material of one study (its current run)."""

    def __init__(self, study: Study, roots: Sequence[Path]):
        self.study = study
        self.roots = list(roots)

    @cached_property
    def run(self) -> Run:
        return load_run(self.study.current)

    @property
    def run_key(self) -> str:
        return f"{self.study.name}/{self.study.current.run_id}"

    @cached_property
    def results(self) -> Results:
        return aggregate(self.run)

    @cached_property
    def live(self) -> LivePayload:
        """The live payload, computed once for the chart, the sentences and the values."""
        res = self.results.ranked()  # the A/A duplicate would count its allocator twice
        return live_payload(self.run, [n for n in res.names if n in res.service])

    @cached_property
    def freshness(self) -> Freshness:
        return check_freshness(self.run.manifest, self.roots)

    @cached_property
    def lock(self) -> LockCheck:
        """The run's Python package versions against the project's constraints.txt."""
        return check_lock(self.run.manifest, self.roots)

    @cached_property
    def values(self) -> dict[str, str]:
        return named_values(self.run, self.results, self.freshness, self.live)

    @cached_property
    def sentences(self) -> dict[str, Callable[[], str]]:
        return prose.sentences(self.run, self.results, self.live)

    @cached_property
    def charts(self) -> dict[str, Callable[[], str]]:
        return ch.charts(self.run, self.results, self.live)

    def data_dir(self) -> str:
        """Where this run's Arrow files go in the site (forward slashes, no leading slash)."""
        return f"data/{self.study.name}/{self.study.current.run_id}"

    def tables(self, prefix: str) -> dict[str, Callable[[], str]]:
        """Tables of this study; `prefix` leads from the page to the site root (for links)."""
        run, res = self.run, self.results
        links = {name: f"{prefix}{self.data_dir()}/{path.name}" for name, path in run.files.items()}
        sizes = {name: path.stat().st_size for name, path in run.files.items()}
        return {
            "spec": lambda: experiment.spec_table(run, self.live),
            "allocators": lambda: experiment.allocators_table(run, res),
            "headline": lambda: experiment.headline_table(res),
            "memory_limit": lambda: limit_table(limit_run(run)),
            "confounds": lambda: experiment.confounds_table(run),
            "provenance": lambda: provenance.provenance_table(
                run, self.freshness, self.values, self.lock
            ),
            "allocator_provenance": lambda: provenance.allocator_provenance_table(res),
            "full": lambda: fulltable.full_table(run.summary),
            "downloads": lambda: fulltable.downloads(links, sizes),
            "knobs": lambda: knobs.knobs_table(recycling.without_recycled(run, res)),
            "recycling": lambda: recycling.recycling_table(run, res),
            "leak": lambda: leak_table(leak_results(run, list(res.names))),
            "timers": lambda: settling.timers_table(run, res),
        }

    def banners(self, runs_used: Sequence[str] = ()) -> list[str]:
        return notes.banners(self.study, self.run, self.freshness, self.results, runs_used)
