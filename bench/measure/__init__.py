"""Measuring a program: its anonymous memory, on a schedule, on a machine held still.

- `bench.measure.groups`: a fresh memory group per measured program (cgroup v2, v1, or procfs).
- `bench.measure.sampler`: the sampler thread, anonymous bytes on an absolute schedule.
- `bench.measure.machine`: host facts, the confounds (THP, swap, governor, caches), and the
  CPU account of a measurement (`MachineMeter`).
- `bench.measure.memlimit`: a memory limit on a group (v2 or v1) and the kernel's counters of
  what it did (limit hits, OOM kills, the charged peak).
- `bench.measure.journal`: what a run changed on the machine, undone by the next run or
  `doctor` when the run that changed it was killed.
- `bench.measure.runlock`: one measurement at a time on a machine.
- `bench.measure.runstats`: the statistics of a run as small pure functions (peak, settled,
  percentiles, overhead, disturbance), shared by the runner, the generator and the report.
- `bench.measure.retention`: where a process's memory sits, from its allocator's statistics and
  the kernel's view (pure: the components, and the retention table's rows of a repeat).

Nothing is imported here (the load generator process imports runstats alone).
"""

__all__ = [
    "groups",
    "journal",
    "machine",
    "memlimit",
    "retention",
    "runlock",
    "runstats",
    "sampler",
]
