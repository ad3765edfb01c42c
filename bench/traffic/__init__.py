"""The traffic a study sends: a spec's request file, a browser's HAR, their random fields.

- `bench.traffic.requestfile`: a request file (JSON lines, or a `.har` converted first), read
  and checked with file:line (`load_requests`), and each request's variants rendered.
- `bench.traffic.har`: a browser's HAR export converted to a request file's requests (merged
  into weights, or one session kept in order as a flow).
- `bench.traffic.flows`: flows, steps that use values saved from earlier answers: checked with
  file:line, and the pure work of running them (save paths, filling a step).
- `bench.traffic.templates`: the seeded `${...}` random fields of request paths and bodies.
- `bench.traffic.issues`: `RequestIssue` and `RequestFileError`, what both readers report.

The spec's loading (bench.spec.loading) reads the request file once; the load generator
(bench.load) renders what it sends from the checked requests, and runs each flow's steps.
Nothing is imported here.
"""

__all__ = ["flows", "har", "issues", "requestfile", "templates"]
