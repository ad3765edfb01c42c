"""The Python service under test, and what starts it.

- `service.app`: the FastAPI app (create_app), one per uvicorn worker.
- `service.hosted`: a user's own ASGI or WSGI app served in its place (the config's `app`).
- `service.workerstart`: what every worker does first (slot, allocator proof), both apps alike.
- `service.heap`: the program's own live heap (the allocator's count, Python's blocks).
- `service.tracebacks`: tracebacks read back from a worker's log, condensed to one line.
- `service.churn`: the fragmentation engine behind /churn.
- `service.documents`: the JSON and XML work behind /json and /xml.
- `service.payloads`: the request bodies, deterministic by seed (the load generator uses them).
- `service.limits`: body size and content type checks.
- `service.config`: the configuration handed to every worker.
- `service.mallocinfo`: which library serves malloc, and anonymous memory (`python -m` prints it).
- `service.knobprobe`: a variant's allocator settings, read back from the allocator itself.
- `service.workerslot`: a stable index per worker.
- `service.supervisor`: the process that binds the socket and runs the workers.
- `service.launcher`: start_service() for `allocstudy serve` and the runner, and free_port().
- `service.proctree`: the process tree under a pid, from /proc (bench's memory groups use it).

Nothing is imported here, so `python -m service.mallocinfo` stays fast.
"""
