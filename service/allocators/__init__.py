"""The malloc families, as the process they serve sees them: one module per family.

Everything allocstudy knows of an allocator that can be read inside a running process (how
to recognise its library, its version, its settings read back, its heap count, its internal
statistics) lives in the family's module; the harness's side of the same families (what an
environment asks, how a read-back is judged, the return timers' meaning) is bench.allocators.
Standard library and ctypes only, nothing from bench: a uvicorn worker, a hosted app and a
bare `python -m service.allocators.probe` load it.

- `service.allocators.glibc`: ptmalloc2 (mallinfo2, tunables read back, fork probes).
- `service.allocators.jemalloc`: jemalloc through mallctl.
- `service.allocators.tcmalloc`: gperftools' tcmalloc (flags, numeric properties).
- `service.allocators.mimalloc`: mimalloc 2 and 3 (options, heap visit).
- `service.allocators.python`: CPython's pymalloc over whichever malloc.
- `service.allocators.readings`: the shapes every family answers in (`MallocCounter`,
  `InternalStats`).
- `service.allocators.serving`: which library serves malloc (dladdr), its family, its version.
- `service.allocators.knobs`: `read_knobs`, the settings ALLOCSTUDY_KNOBS asks for, read back.
- `service.allocators.heap`: `heap_record`, the program's live heap (/stats `heap`).
- `service.allocators.stats`: `internal_record`, each family's own statistics (/stats
  `internal`).
- `service.allocators.probe`: `python -m service.allocators.probe`, the preload's proof.

Nothing is imported here, so the probe stays fast.
"""
