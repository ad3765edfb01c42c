"""The traffic a study sends: a spec's request file, a browser's HAR, their random fields.

- `bench.traffic.requestfile`: a request file (JSON lines, or a `.har` converted first), read
  and checked with file:line (`load_requests`), and each request's variants rendered.
- `bench.traffic.har`: a browser's HAR export converted to a request file's requests.
- `bench.traffic.templates`: the seeded `${...}` random fields of request paths and bodies.
- `bench.traffic.issues`: `RequestIssue` and `RequestFileError`, what both readers report.

The spec's loading (bench.spec.loading) reads the request file once; the load generator
(bench.load) renders what it sends from the checked requests. Nothing is imported here.
"""

__all__ = ["har", "issues", "requestfile", "templates"]
