"""A run of a study: its plan, its one lifecycle and driver, and where its cells run.

Named `run` for what it makes: one run folder, however its cells are executed.

- `bench.run.rounds`: the plan: rounds, their rotated order (the A/A duplicate's drawn place),
  the cells of each.
- `bench.run.lifecycle`: `Run`: open or resume a run folder, merge a cell, interrupt, complete,
  on one clock.
- `bench.run.driver`: `drive`, the plan's cells through an `Executor` (`submit(cell) ->
  CellResult`) into the run; the `Outcome` the command turns into an exit code.
- `bench.run.local`: the local executor and `run_study` (verification, calibration,
  confounds held on this machine).
- `bench.run.signals`: SIGINT/SIGTERM/SIGHUP as KeyboardInterrupt, and held while stopping.

The Dask executor is bench.cluster.executor. Nothing is imported here.
"""

__all__ = ["driver", "lifecycle", "local", "rounds", "signals"]
