"""The `allocstudy` command: a thin pipeline over the modules that do the work.

Each command is a small function over a stage of the pipeline (bench.commands holds the longer
ones). User errors (bench.errors.UserError) rise out of the commands and are caught once, in
`main`, which prints them as one line and exits with their code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.commands.idlecheck import idle_warnings
from bench.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UserError
from bench.spec import Spec, SpecError, load_spec
from bench.toolinfo import version_text

#: `export --format` choices (bench.commands.runs writes them; kept here so --help needs no
#: pyarrow import).
EXPORT_FORMATS = ("csv", "parquet", "json")

__all__ = ["build_parser", "main"]

#: The exit codes of each command as --help states them (bench.errors defines them).
DOCTOR_EXITS = (
    "exit codes: 0 the spec can run here; 1 it cannot (the report says why); 2 a bad spec"
)
SERVE_EXITS = (
    "exit codes: 0 stopped cleanly by Ctrl-C or SIGTERM; 3 the service failed (did not start, a "
    "worker is not on the allocator, it stopped by itself); 2 a bad spec or an unknown "
    "allocator; 130 interrupted before the service was ready"
)
RUN_EXITS = (
    "exit codes: 0 every allocator that resolved ran (one that cannot be had here is recorded "
    "as skipped, with the reason); 3 a resolved allocator failed (its library does not serve "
    "malloc, a variant's setting does not read back as asked, a worker died: the others' data "
    "are kept; "
    "a repeat in which a worker died is kept too, flagged with the signal and the time; a "
    "worker killed at the spec's memory limit is a result, not a failure); "
    "1 the results folder cannot be written (read-only, full: the line names it; what a run "
    "wrote before is kept), or the spec sets a memory limit and no writable memory cgroup "
    "can hold it; 2 a bad spec or arguments, or --resume of a run whose spec has "
    "changed since (the line says what changed); 4 another run is measuring on this machine "
    "(pass --wait to start after it); 5 the run completed but the service could not keep up "
    "with the asked rate in some repeat (saturated: never ranked; lower service.rate); with "
    "--cluster: 2 also when Dask is not installed, 1 "
    "when the scheduler cannot be reached or no worker offers what the cells need; a cell "
    "whose host another run holds fails and is tried once more elsewhere (--wait waits "
    "instead); 130 interrupted by Ctrl-C, SIGTERM or SIGHUP (the "
    "partial run is kept, marked incomplete; --resume continues it)"
)
HAR_EXITS = (
    "exit codes: 0 written (the last line names the file); 2 a HAR that cannot be read or "
    "converted (one line per problem, file:line), or an output file that exists (pass --force)"
)
COMPARE_EXITS = (
    "exit codes: 0 the runs were compared (whatever changed, unless --fail-on names it); 1 "
    "with --fail-on, a measure of a named group moved beyond the noise in its bad direction; "
    "2 a path that names no run, a run that cannot be read, or an unknown --fail-on group"
)


def cmd_check(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.specs:
        try:
            spec = load_spec(path)
        except SpecError as exc:
            print(exc, file=sys.stderr)
            status = EXIT_USAGE
            continue
        fill = spec.service.fill_s
        full = (
            f"live set full after ~{fill:.0f} s of its {spec.service.load_s:g} s load"
            if fill is not None and fill <= spec.service.load_s
            else f"live set still growing at the end of its {spec.service.load_s:g} s load"
        )
        if spec.service.stages:
            svc = spec.service
            full = (
                f"load in {len(svc.stages)} stages up to {svc.peak_rate:g} requests/s "
                f"(a mean of {svc.rate:,.0f}), {full}"
            )
        mix = spec.service.request_mix
        if mix is not None:  # a request file: say what is sent (and to what)
            sent = f"{len(mix.requests)} requests from {mix.file.name}"
            full = f"app {spec.service.app}, {sent}" if spec.service.hosted else f"{full}, {sent}"
        print(
            f"{path}: ok ({spec.name}: {len(spec.allocators)} allocators, {full}, "
            f"spec {spec.spec_hash[:12]})"
        )
        for line in idle_warnings(spec):
            print(f"{path}: {line}", file=sys.stderr)
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(Spec.model_json_schema(), indent=2))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from bench.commands import doctor
    from bench.measure import journal

    for line in journal.recover():  # what a killed run left changed, put back first
        print(f"allocstudy: {line}", file=sys.stderr, flush=True)
    if args.restore:
        return EXIT_OK
    spec = load_spec(args.spec) if args.spec else None
    return doctor.run(spec, as_json=args.json)


def cmd_serve(args: argparse.Namespace) -> int:
    from bench.commands.serve import serve_command

    return serve_command(load_spec(args.spec), args.allocator, port=args.port)


def _only(args: argparse.Namespace) -> list[str] | None:
    return [a.strip() for a in args.only.split(",") if a.strip()] if args.only else None


def cmd_run(args: argparse.Namespace) -> int:
    from bench.commands.run import run_command

    return run_command(
        load_spec(args.spec, args.set),
        spec_path=Path(args.spec),
        out=Path(args.out),
        only=_only(args),
        resume=args.resume,
        skip_control=args.no_control,
        skip_service=args.no_service,
        wait=args.wait,
        cluster=args.cluster,
        require=args.require,
    )


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.commands.compare import compare_command, parse_fail_on

    return compare_command(
        Path(args.run_a),
        Path(args.run_b),
        as_json=args.json,
        as_markdown=args.markdown,
        fail_on=parse_fail_on(args.fail_on),
    )


def cmd_har(args: argparse.Namespace) -> int:
    from bench.commands.har import har_command

    out = Path(args.out) if args.out else None
    return har_command(Path(args.har), out, keep_order=args.keep_order, force=args.force)


def cmd_plan(args: argparse.Namespace) -> int:
    from bench.commands.plan import plan_command
    from bench.run.local import check_only

    spec = load_spec(args.spec, args.set)
    only = _only(args)
    check_only(spec, only)
    return plan_command(
        spec,
        only=only,
        hosts=args.cluster_hosts,
        skip_service=args.no_service,
        skip_control=args.no_control,
        as_json=args.json,
    )


def cmd_runs(args: argparse.Namespace) -> int:
    from bench.commands.runs import runs_command

    return runs_command(Path(args.out), as_json=args.json)


def cmd_show(args: argparse.Namespace) -> int:
    from bench.commands.runs import show_command

    return show_command(Path(args.run), as_json=args.json)


def cmd_export(args: argparse.Namespace) -> int:
    from bench.commands.runs import export_command

    dest = Path(args.to) if args.to else None
    return export_command(Path(args.run), fmt=args.format, table=args.table, out=dest)


def _json_option(p: argparse.ArgumentParser, instead: str = "tables") -> None:
    p.add_argument(
        "--json", action="store_true", help=f"print one JSON object instead of {instead}"
    )


def _set_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one spec key for this run only, e.g. --set service.rate=400 --set "
        "repeats=3 (a dotted key, a YAML value; checked like the file; recorded in the "
        "manifest and the spec hash, so the article and compare say the run differs from "
        "the file); repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allocstudy",
        description="Measure what a memory allocator costs a real service: run a FastAPI "
        "service and a bare C++ control under several mallocs (swapped with LD_PRELOAD), "
        "sample anonymous memory under an open-loop load, and write Arrow tables.",
    )
    parser.add_argument(
        "--version", action="version", version=version_text(), help="version and git commit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "check",
        help="validate spec files (one line per problem, exit 2); warn when an idle is "
        "shorter than an allocator's return timers, read back",
    )
    p.add_argument("specs", nargs="+", metavar="SPEC")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("schema", help="print the JSON Schema of a spec")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("doctor", help="what this machine can run: allocators, cgroups, confounds")
    p.epilog = DOCTOR_EXITS
    p.add_argument("spec", nargs="?", metavar="SPEC", help="spec whose allocators to check")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--restore",
        action="store_true",
        help="only put back what a killed run left changed (THP, cgroups), then exit",
    )
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("serve", help="start the service under one allocator (Ctrl-C stops it)")
    p.epilog = SERVE_EXITS
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--allocator", required=True, help="allocator name from the spec or registry")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "run",
        help="run the study of a spec; prints the run folder last",
        description="Run the service experiment and the C++ control for every allocator of "
        "SPEC and write results/<spec>/<run id>/ (manifest.json and Arrow tables). Repeats "
        "run in rounds, the allocators in an order rotated each round; the order, the idle "
        "traffic and whether a forced reclaim was possible are recorded in the manifest. With "
        "--cluster every repeat (a cell) runs on a benchmark host of its own and the client "
        "merges them into the one run folder.",
        epilog=RUN_EXITS,
    )
    p.add_argument("spec", metavar="SPEC")
    _set_option(p)
    p.add_argument("--out", default="results", help="results folder (default results/)")
    p.add_argument("--only", help="comma-separated allocator names to run")
    p.add_argument(
        "--resume",
        action="store_true",
        help="reuse finished allocators of the latest incomplete run (refused if the spec "
        "has changed since); with --cluster, every cell that finished",
    )
    p.add_argument("--no-control", action="store_true", help="skip the C++ control")
    p.add_argument("--no-service", action="store_true", help="skip the service experiment")
    p.add_argument(
        "--wait",
        action="store_true",
        help="if another run is measuring on this machine, start when it has finished "
        "(with --cluster: on each host)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run every cell on a Dask cluster, one benchmark host per cell: a scheduler "
        "address (tcp://host:8786) or `local` (a LocalCluster on this machine); needs "
        'pip install "allocstudy[cluster]" (docs/guide/cluster.md)',
    )
    p.add_argument(
        "--require",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --cluster: run cells only on hosts whose worker advertises the resource "
        "KEY:VALUE (e.g. arch=aarch64); repeatable, added to the spec's hosts:",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "compare",
        help="what changed between two runs, and whether it is outside the noise",
        description="Compare run B with run A: per allocator, the service's peak, settled, "
        "overhead and latency percentiles and the control's throughput and settled memory, "
        "both values, the change, and whether it is outside the noise (the 95% intervals "
        "when both runs repeated a measure, else the A/A floor of either run, else the "
        "stated 5%; each row names its rule). What differs in how the runs were made "
        "(spec keys, host, kernel, CPU, versions) is printed first.",
        epilog=COMPARE_EXITS,
    )
    for name, which in (("run_a", "A, the baseline"), ("run_b", "B, compared with A")):
        p.add_argument(
            name,
            metavar=name.upper(),
            help=f"run {which}: a run folder, results/<spec>/latest, or a study folder",
        )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    out.add_argument(
        "--markdown", action="store_true", help="print a Markdown table (for a pull request)"
    )
    p.add_argument(
        "--fail-on",
        metavar="GROUPS",
        help="exit 1 when a measure of these groups moved beyond the noise in its bad "
        "direction: comma-separated, of memory (peak, settled, overhead; more is worse), "
        "latency (p50, p95, p99; slower is worse), throughput (the control; less is worse)",
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "plan",
        help="the cells of a run in order, each phase's length, the estimated total",
        description="Print what `allocstudy run SPEC` would do, without running it: every "
        "cell (allocator, experiment, repeat) in run order with its phases in seconds, and "
        "the estimated total, on this machine and on a cluster of N hosts.",
        epilog="exit codes: 0 the plan was printed; 2 a bad spec or arguments",
    )
    p.add_argument("spec", metavar="SPEC")
    _set_option(p)
    p.add_argument("--only", help="comma-separated allocator names to plan")
    p.add_argument("--no-control", action="store_true", help="leave out the C++ control")
    p.add_argument("--no-service", action="store_true", help="leave out the service experiment")
    p.add_argument(
        "--cluster-hosts",
        type=int,
        action="append",
        default=[],
        metavar="N",
        help="also estimate the run on a cluster of N hosts (repeatable)",
    )
    _json_option(p, "a table")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser(
        "har",
        help="write a browser's HAR export as a request file (JSON lines) to edit",
        description='Convert FILE.har ("Save all as HAR" in a browser) into a request '
        "file: the requests to the most frequent host, without hop-by-hop headers, Host, "
        "Content-Length or cookies. By default identical requests merge into one weighted "
        "request; with --keep-order the recorded session is one flow instead, one step per "
        "request in the order they started, each step waiting as long after the previous "
        "answer as the browser did. Prints what was kept and dropped, then the file written.",
        epilog=HAR_EXITS,
    )
    p.add_argument("har", metavar="FILE.har")
    p.add_argument(
        "--out", "-o", metavar="FILE", help="the request file to write (default FILE.jsonl)"
    )
    p.add_argument(
        "--keep-order",
        action="store_true",
        help="keep the session's order and pauses as one flow (a sequence) instead of merging "
        "identical requests into weights",
    )
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=cmd_har)

    p = sub.add_parser(
        "runs",
        help="list the runs under a results folder (spec, id, status, allocators, date, host)",
        epilog="exit codes: 0 listed (also when there is none); 2 a results folder that "
        "cannot be read",
    )
    p.add_argument("--out", default="results", help="results folder (default results/)")
    _json_option(p, "a table")
    p.set_defaults(func=cmd_runs)

    run_help = "a run folder, results/<spec>/latest, or a study folder (its current run)"
    p = sub.add_parser(
        "show",
        help="a run's headline per allocator (peak, settled, given back, p99, control) and flags",
        epilog="exit codes: 0 shown; 2 a path that names no run, or a run that cannot be read",
    )
    p.add_argument("run", metavar="RUN", help=run_help)
    _json_option(p, "a table")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "export",
        help="write a run's tables as CSV, Parquet or JSON lines",
        description="Write the Arrow tables of a run for pandas, polars, DuckDB or a "
        "spreadsheet: <table>.csv, .parquet or .jsonl (one object a line) into RUN/export/ "
        "(or --to); prints each file written. CSV writes list columns as JSON text.",
        epilog="exit codes: 0 written; 2 a path that names no run, an unknown table, or a "
        "folder that cannot be written",
    )
    p.add_argument("run", metavar="RUN", help=run_help)
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--table", metavar="NAME", help="one table (summary, memory, requests, ...)")
    p.add_argument("--to", metavar="FOLDER", help="where to write (default RUN/export/)")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except UserError as exc:
        print(exc.terminal_text(), file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("allocstudy: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
