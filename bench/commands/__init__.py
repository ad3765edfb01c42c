"""The longer `allocstudy` commands, each over the stage that does the work (bench.cli wires them).

- `bench.commands.doctor`: `allocstudy doctor`, what this machine can run and what fixes it.
- `bench.commands.serve`: `allocstudy serve`, the service under one allocator until Ctrl-C.
- `bench.commands.run`: `allocstudy run`, the study (bench.run) for a terminal.
- `bench.commands.har`: `allocstudy har`, a browser's HAR written as a request file to edit.
- `bench.commands.compare`: `allocstudy compare`, two runs (bench.report.changes) side by side.
- `bench.commands.idlecheck`: `allocstudy check`'s warning when an idle is shorter than an
  allocator's return timers, read back under each allocator found here.

Nothing is imported here; bench.cli imports a command when it runs it.
"""

__all__ = ["compare", "doctor", "har", "idlecheck", "run", "serve"]
