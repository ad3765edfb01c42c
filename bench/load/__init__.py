"""The open-loop load generator: what it is told, its schedule, its account, process, handle.

- `bench.load.config`: `LoadConfig` (validated, JSON on disk), the endpoints and the bodies.
- `bench.load.schedule`: when every request is due and which endpoint it calls (pure).
- `bench.load.record`: the per-request `Record` and its `LoadSummary` (pure).
- `bench.load.progressfile`: the live progress the generator writes once a second.
- `bench.load.generator`: the asyncio engine and the process, `python -m bench.load.generator`.
- `bench.load.connections`: its kept-alive connections, one per worker and one per flow.
- `bench.load.handle`: the runner's side, `start_loadgen`, `LoadgenProcess.go`, `wait_loadgen`.

Nothing is imported here, so the generator process imports only what it uses (no Arrow until
it writes its rows, nothing of the report). The requests it sends come from bench.traffic.
"""

__all__ = [
    "config",
    "connections",
    "generator",
    "handle",
    "progressfile",
    "record",
    "schedule",
]
