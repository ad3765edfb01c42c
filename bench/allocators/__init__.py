"""The allocators: find each malloc library, prove it serves malloc, build it from source.

- `bench.allocators.registry`: resolve a spec entry to an `Allocator` (`resolve`,
  `resolve_spec`, `resolve_for_spec`), or say why it cannot be had here and what fixes it.
- `bench.allocators.verification`: `verify` (dladdr(malloc) in a fresh interpreter, and the
  variant's settings read back there) and `library_mapped` (the library in a running
  process's memory map).
- `bench.allocators.knobs`: what a variant's environment asks of its allocator (MALLOC_CONF,
  GLIBC_TUNABLES, MIMALLOC_*, TCMALLOC_*, PYTHONMALLOC), and the judgement of each read-back.
- `bench.allocators.timers`: when each allocator gives memory back on its own (its return
  timers, read back in every process), and the least idle that lets them act.
- `bench.allocators.sourcebuild`: `build_from_source` with cmake.
- `bench.allocators.buildcache`: the one build cache (root, key, lock, tool probe) for source
  builds and the C++ control.

Nothing is imported here: the C++ control's build needs the cache, not the registry.
"""

__all__ = ["buildcache", "knobs", "registry", "sourcebuild", "timers", "verification"]
