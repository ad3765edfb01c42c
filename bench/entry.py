"""The `allocstudy` command's entry point: a Ctrl-C at any moment ends it with exit 130.

Importing the command line takes a moment (pydantic, pyarrow); a Ctrl-C during that moment
would otherwise end the process by SIGINT with a traceback, before `bench.cli.main` could
catch it. This module imports nothing heavy itself.
"""

from __future__ import annotations

import signal
import sys

__all__ = ["main"]

#: What a run interrupted by Ctrl-C exits with (bench.errors.EXIT_INTERRUPTED, not imported
#: here so an interrupt during that import is caught too).
_INTERRUPTED = 130


def main() -> int:
    # Python leaves SIGINT ignored when it started ignored (a background job of a shell without
    # job control, some CI runners); the command answers Ctrl-C the same way everywhere.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        from bench.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        print("allocstudy: interrupted", file=sys.stderr)
        return _INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
