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
    "(pass --wait to start after it); with --cluster: 2 also when Dask is not installed, 1 "
    "when the scheduler cannot be reached or no worker offers what the cells need; a cell "
    "whose host another run holds fails and is tried once more elsewhere (--wait waits "
    "instead); 130 interrupted by Ctrl-C, SIGTERM or SIGHUP (the "
    "partial run is kept, marked incomplete; --resume continues it)"
)
COMPARE_EXITS = (
    "exit codes: 0 the runs were compared (whatever changed); 2 a path that names no run, "
    "or a run that cannot be read"
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


def cmd_run(args: argparse.Namespace) -> int:
    from bench.commands.run import run_command

    only = [a.strip() for a in args.only.split(",") if a.strip()] if args.only else None
    return run_command(
        load_spec(args.spec),
        spec_path=Path(args.spec),
        out=Path(args.out),
        only=only,
        resume=args.resume,
        skip_control=args.no_control,
        skip_service=args.no_service,
        wait=args.wait,
        cluster=args.cluster,
        require=args.require,
    )


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.commands.compare import compare_command

    return compare_command(Path(args.run_a), Path(args.run_b), as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="allocstudy",
        description="Measure what a memory allocator costs a real service: run a FastAPI "
        "service and a bare C++ control under several mallocs (swapped with LD_PRELOAD), "
        "sample anonymous memory under an open-loop load, and write Arrow tables.",
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
        "KEY:VALUE (e.g. arch=arm64); repeatable, added to the spec's hosts:",
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
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(exc.terminal_text(), file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("allocstudy: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
