"""The experiments: one repeat of the service or of the C++ control, and one cell of either.

- `bench.experiments.cell`: one cell (an allocator's service or control repeat): `run_cell`,
  its `CellResult`, and `merge_cell`, what a result adds to the run's rows and record.
- `bench.experiments.service`: one repeat of the Python service under one allocator (the core:
  launch, phases, samples, load), its watchers told of each moment.
- `bench.experiments.watcher`: the interface of a service repeat's watchers (`Watcher`), what
  they see (`Launch`, `Moment`, `RepeatEnd`) and add (`Contribution`); how to add one.
- `bench.experiments.watchlist`: the one place where the watchers are registered.
- `bench.experiments.repeat_summary`: a service repeat reduced to its summary row and records.
- `bench.experiments.proof`: the allocator proven inside every worker and in every map.
- `bench.experiments.oomkills`: worker deaths under a memory limit, and what they add up to
  (the memory group's watcher).
- `bench.experiments.restarts`: a recycling service's restarts, rows and replacements' proof
  (its watcher).
- `bench.experiments.liveset`: the workers' live sets and heaps at each /stats (its watcher).
- `bench.experiments.idleprobes`: whether the idle probes reached every worker (its watcher).
- `bench.experiments.retention`: each worker's retention log into retention.arrow (its watcher).
- `bench.experiments.control`: one repeat of the C++ control, measured like the service.
- `bench.experiments.control_program`: the control program's command line, events, result.
- `bench.experiments.control_build`: compiling cxx/churn.cpp (cached in the one build cache).
- `bench.experiments.control_run`: running the program once, nothing left behind.
- `bench.experiments.harness`: what both experiments share (cores, phases, interruption).
- `bench.experiments.calibrate`: `service.calibrate`, the ramp that finds a rate the app holds.
- `bench.experiments.plan`: how long a spec takes, cell by cell (`allocstudy plan`).

The run over every cell is bench.run. Nothing is imported here.
"""

__all__ = [
    "calibrate",
    "cell",
    "control",
    "control_build",
    "control_program",
    "control_run",
    "harness",
    "idleprobes",
    "liveset",
    "oomkills",
    "plan",
    "proof",
    "repeat_summary",
    "restarts",
    "retention",
    "service",
    "watcher",
    "watchlist",
]
