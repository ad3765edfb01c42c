"""`python -m service.allocators.probe`: which malloc serves a fresh interpreter, as JSON.

It prints one object `{"pid", "malloc_library", "version", "pythonmalloc"}` (and `"knobs"`,
the read-back of service.allocators.knobs, when ALLOCSTUDY_KNOBS asks for one); the
allocator registry runs it under a preload to verify the preload (bench.allocators.
verification). It imports only the standard library and ctypes, so it is fast.
"""

from __future__ import annotations

import json
import os
import sys

from service.allocators.knobs import KNOBS_ENV, read_knobs, requests_from_env
from service.allocators.python import malloc_mode
from service.allocators.serving import allocator_version, malloc_library

__all__ = ["probe_report"]


def probe_report() -> dict[str, object]:
    """What this process says of its own malloc (and its settings, when asked)."""
    library = malloc_library()
    report: dict[str, object] = {
        "pid": os.getpid(),
        "malloc_library": library,
        "version": allocator_version(library),
        "pythonmalloc": malloc_mode(),
    }
    if os.environ.get(KNOBS_ENV):  # settings and return timers, read back here too
        report["knobs"] = read_knobs(requests_from_env())
    return report


def _main() -> int:
    print(json.dumps(probe_report()))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
