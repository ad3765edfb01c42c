"""The `allocstudy` command's entry point: a Ctrl-C at any moment ends it with exit 130.

Importing the command line takes a moment (pydantic, pyarrow); a Ctrl-C during that moment
would otherwise end the process by SIGINT with a traceback, or as a library's panic, before
`bench.cli.main` could catch it. This module imports nothing heavy itself. (A Ctrl-C before
the interpreter has run this module is the interpreter's own to answer.)
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

__all__ = ["main"]

#: What a run interrupted by Ctrl-C exits with (bench.errors.EXIT_INTERRUPTED, not imported
#: here so an interrupt during that import is caught too).
_INTERRUPTED = 130


def _exit_interrupted() -> NoReturn:
    """Exit 130 at once, the streams flushed.

    Returning would not do: CPython remembers a KeyboardInterrupt that was raised inside code
    it ran from a string (the `exec` of generated code: dataclasses, namedtuples, pydantic
    models, as modules are imported or a model is built) even after it was caught, and ends the
    process by SIGINT (exit -2) once `main` has returned. The interrupted command has already
    saved its run and said so; nothing is left for the interpreter's exit to do.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(_INTERRUPTED)


def main() -> int:
    # While the command line is imported, a Ctrl-C is noted and answered once the import is
    # done: raised inside an extension module's initialisation (pydantic's core is Rust) it
    # would come out as that library's panic rather than KeyboardInterrupt. Python's handler
    # is set after it even when the command started with SIGINT ignored (a background job of
    # a shell without job control, some CI runners): the command answers Ctrl-C the same way
    # everywhere.
    noted: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: noted.append(signum))
    try:
        from bench.cli import main as cli_main
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if noted:
            raise KeyboardInterrupt
        code = cli_main()
    except KeyboardInterrupt:
        print("allocstudy: interrupted", file=sys.stderr)
        _exit_interrupted()
    if code == _INTERRUPTED:
        _exit_interrupted()
    return code


if __name__ == "__main__":
    sys.exit(main())
