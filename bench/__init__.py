"""allocstudy's measurement core: specs, allocators, processes, sampling, load and tables.

Nothing in this package imports MkDocs except `bench.mkdocs_plugin`, the thin adapter over
the report engine in `bench.report`.
"""

__version__ = "0.1.0"
