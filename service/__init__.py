"""The Python service under test, and what starts it.

- `service.app`: the FastAPI app (create_app), one per uvicorn worker.
- `service.hosted`: a user's own ASGI or WSGI app served in its place (the config's `app`).
- `service.workerstart`: what every worker does first (slot, allocator proof), both apps alike.
- `service.tracebacks`: tracebacks read back from a worker's log, condensed to one line.
- `service.churn`: the fragmentation engine behind /churn.
- `service.documents`: the JSON and XML work behind /json and /xml.
- `service.payloads`: the request bodies, deterministic by seed (the load generator uses them).
- `service.bodies`: the HTTP request body checks (size, content type, read timeout).
- `service.config`: the configuration handed to every worker.
- `service.workerslot`: a stable index per worker.
- `service.supervisor`: the process that binds the socket and runs the workers.
- `service.workerprocess`: one worker process (uvicorn's, with its request limit and log).
- `service.reportlines`: the lines supervisor and workers write for the launcher.
- `service.recycling`, `service.workerexits`: worker restarts and deaths, as those lines.
- `service.retentionlog`: each worker's log of where its memory sits (the retention table).
- `service.launcher`: start_service() for `allocstudy serve` and the runner, and free_port().
- `service.allocators/`: the malloc families as a process sees them (which serves malloc,
  settings read back, heap count, internal statistics; `python -m service.allocators.probe`).
- `service.process/`: the /proc and prctl toolkit bench shares (process tree, anonymous
  memory, a measured child's start).

Nothing is imported here, so `python -m service.allocators.probe` stays fast.
"""
