"""allocstudy's measurement core, one folder per stage of the pipeline:

    spec -> allocators -> load and measure -> experiments -> results -> report

- `bench.spec`: the experiment specs (YAML validated by Pydantic models).
- `bench.allocators`: find each malloc, prove it serves malloc, build from source (one cache).
- `bench.load`: the open-loop load generator (its plan, record, process and parent handle).
- `bench.measure`: memory groups, the sampler, machine confounds, run statistics.
- `bench.experiments`: the service and C++ control experiments, and the runner over both.
- `bench.results`: the run folder, its manifest and its Arrow tables.
- `bench.report`: the report engine (results in, article out); knows nothing of MkDocs.
- `bench.cli`, `bench.commands`: the `allocstudy` command; `bench.errors`: the user-error root
  and exit codes; `bench.progress`: the live display.

Nothing in this package imports MkDocs except `bench.mkdocs_plugin`, the thin adapter over
the report engine; the measurement core never imports the report. Package `__init__` files
import nothing, so a process that needs one module (the load generator) stays light.
"""

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "allocators",
    "cli",
    "commands",
    "errors",
    "experiments",
    "load",
    "measure",
    "progress",
    "report",
    "results",
    "spec",
]
