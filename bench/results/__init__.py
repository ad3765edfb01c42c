"""What a run leaves on disk (docs/guide/data-format.md), written by the runner, read by the report.

- `bench.results.tables`: the Arrow tables' schemas and format version, atomic writes, checked
  reads (`read_table`, `table_rows`).
- `bench.results.manifest`: the manifest's format version, its writer and its one reader.
- `bench.results.rundir`: the run folder: its id, all its tables, `latest`, the newest
  incomplete run of a spec; RunFolderError when it cannot be written.
- `bench.results.resume`: the run --resume continues, refused when its spec has changed.

Nothing is imported here.
"""

__all__ = ["manifest", "resume", "rundir", "tables"]
