"""Processes, read and started from Linux's own interfaces (/proc, prctl): the toolkit the
service's launcher and bench's runner, memory groups and load generator share.

- `service.process.tree`: the process tree under a pid, and pinning it onto cores (/proc).
- `service.process.memory`: a process's anonymous memory (`anon_bytes`, `rss_anon_bytes`).
- `service.process.childenv`: how a measured child starts (a clean allocator environment,
  death with its parent, its cgroup and cores).

Standard library and ctypes only, nothing from bench. Nothing is imported here.
"""
