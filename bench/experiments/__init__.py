"""The experiments: one repeat of the service or of the C++ control, and the runner over both.

- `bench.experiments.service`: one repeat of the Python service under one allocator.
- `bench.experiments.control`: one repeat of the C++ control, measured like the service.
- `bench.experiments.control_program`: the control program's command line, events, result.
- `bench.experiments.control_build`: compiling cxx/churn.cpp (cached in the one build cache).
- `bench.experiments.control_run`: running the program once, nothing left behind.
- `bench.experiments.harness`: what both experiments share (cores, phases, interruption).
- `bench.experiments.runner`: `run_study`, every allocator of a spec in rotated rounds.
- `bench.experiments.calibrate`: `service.calibrate`, the ramp that finds a rate the app holds.

Nothing is imported here.
"""

__all__ = [
    "calibrate",
    "control",
    "control_build",
    "control_program",
    "control_run",
    "harness",
    "runner",
    "service",
]
