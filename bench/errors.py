"""The one root of user errors, and the exit codes of `allocstudy`, defined once.

A user error is a problem the user can fix (a bad spec, a missing compiler, a port in use, an
unreadable table); its message says what is wrong and, where it can, what fixes it. Every
command lets it rise and `bench.cli.main` catches it in one place, prints it as one line
(`allocstudy: <message>`) and exits with its code. Anything else that escapes is a bug and
keeps its traceback.

    UserError                      exit 3 unless it says otherwise
    ├── UsageError                 exit 2: bad arguments
    ├── bench.spec.SpecError       exit 2: a spec that cannot be used (one line per problem)
    ├── bench.allocators.sourcebuild.BuildError
    ├── bench.experiments.harness.ExperimentError
    │   └── bench.experiments.harness.RepeatFailed   what the repeat measured is kept, flagged
    ├── bench.experiments.control_program.ControlError (and its kinds)
    ├── bench.load.config.LoadgenError
    ├── bench.results.tables.TableError, bench.results.manifest.ManifestError
    ├── bench.results.rundir.RunFolderError   exit 1: the results folder cannot be written
    ├── bench.results.resume.SpecChanged      exit 2: --resume of a run made with another spec
    ├── bench.commands.serve.ServeError
    ├── bench.measure.runlock.MachineBusy   exit 4: another run holds the machine
    └── bench.report.errors.ReportError   (the MkDocs plugin turns it into a PluginError)
        └── BadRunError                   a run's own file is unreadable (skip_bad_runs)

service.launcher.LaunchError stays in `service` (which never imports bench); the commands
that start the service turn it into one of the above.
"""

from __future__ import annotations

__all__ = [
    "EXIT_BUSY",
    "EXIT_CANNOT_RUN",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_SATURATED",
    "EXIT_USAGE",
    "UsageError",
    "UserError",
]

#: Everything asked for was done (a run: every allocator that resolved ran).
EXIT_OK = 0
#: `allocstudy doctor`: this machine cannot run the spec (the report says why); `allocstudy run`:
#: the results folder cannot be written (read-only, full, not a folder), or the spec's memory
#: limit has no memory cgroup to hold it.
EXIT_CANNOT_RUN = 1
#: A bad spec or bad arguments.
EXIT_USAGE = 2
#: Something failed: a resolved allocator during a run, the service under `serve`.
EXIT_FAILED = 3
#: Another run holds the machine (two runs at once measure each other); --wait waits.
EXIT_BUSY = 4
#: The run completed, but the service could not keep up with the asked rate in some repeat
#: (saturated): its memory was measured under a queue, not the load the spec describes.
EXIT_SATURATED = 5
#: Ctrl-C, SIGTERM or SIGHUP (a run keeps what it measured, marked incomplete).
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem the user can fix; str() is the message for the terminal.

    `speaker` names who says it (`allocstudy`, `allocstudy serve`) and `exit_code` the code
    the command exits with; a raiser may give another code for one error (exit_code=...).
    """

    speaker: str = "allocstudy"
    exit_code: int = EXIT_FAILED

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code

    def terminal_text(self) -> str:
        """What the terminal shows: `<speaker>: <message>`."""
        return f"{self.speaker}: {self}"


class UsageError(UserError):
    """Arguments that cannot be used (an allocator name the spec does not have...)."""

    exit_code = EXIT_USAGE
