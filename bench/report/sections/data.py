"""The full data: one row per experiment, allocator and repeat, and the run's Arrow files.

Tables {{ table.full }} and {{ table.downloads }} (bench.report.fulltable draws them).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import fulltable
from bench.report.run import Run
from bench.report.section import Entries, Loaded, Section

__all__ = ["DataSection"]


@dataclass(frozen=True)
class Data:
    run: Run
    #: where the run's Arrow files are served, from the site root
    data_dir: str


class DataSection(Section[Data]):
    name = "data"
    title = "The full data"

    def compute(self, loaded: Loaded) -> Data:
        return Data(loaded.run, loaded.data_dir)

    def tables(self, data: Data, prefix: str) -> Entries:
        files = data.run.files
        links = {name: f"{prefix}{data.data_dir}/{path.name}" for name, path in files.items()}
        sizes = {name: path.stat().st_size for name, path in files.items()}
        return {
            "full": lambda: fulltable.full_table(data.run.summary),
            "downloads": lambda: fulltable.downloads(links, sizes),
        }
