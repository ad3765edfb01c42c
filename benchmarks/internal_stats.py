"""Internal statistics: the time of one read of each allocator's own statistics.

/stats now carries `internal` (service.allocators.stats.internal_record), read on every
call; this measures what one read costs under each allocator, in real interpreters started
with the allocator preloaded, one after the other in one run: each holds a few thousand
live blocks, then times --reads reads one by one (perf_counter_ns) and reports the median
and the 90th percentile, beside the heap record's read for scale, and the whole line the
retention log writes every few seconds (service.retentionlog: the statistics, the heap count,
pymalloc's arena bytes and smaps_rollup).

    .venv/bin/python benchmarks/internal_stats.py [--reads 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBDIR = Path("/usr/lib/x86_64-linux-gnu")

_TIMER = """
import json, statistics, sys, time
from service.allocators.heap import heap_record
from service.allocators.stats import internal_record, retention_reading
from service.retentionlog import _line
held = [bytearray(n % 5000 + 16) for n in range(20000)]
def timed(read, count):
    read()
    spans = []
    for _ in range(count):
        start = time.perf_counter_ns()
        read()
        spans.append(time.perf_counter_ns() - start)
    spans.sort()
    return {"median_us": statistics.median(spans) / 1000,
            "p90_us": spans[int(0.9 * len(spans))] / 1000}
count = int(sys.argv[1])
print(json.dumps({"internal": timed(internal_record, count), "heap": timed(heap_record, count),
                  "line": timed(lambda: _line(retention_reading), count)}))
"""


def _libraries() -> dict[str, str | None]:
    v3 = next(
        iter(ROOT.glob(".venv/lib/python3*/site-packages/cmeel.prefix/lib/libmimalloc.so.3")), None
    )
    found: dict[str, str | None] = {"glibc": None}
    for name, path in (
        ("jemalloc", LIBDIR / "libjemalloc.so.2"),
        ("tcmalloc", LIBDIR / "libtcmalloc_minimal.so.4"),
        ("mimalloc-v2", LIBDIR / "libmimalloc.so.2"),
        ("mimalloc-v3", v3),
    ):
        if path is not None and path.is_file():
            found[name] = str(path)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=2000)
    args = parser.parse_args()
    if Path("/tmp/allocstudy-QUIET").exists():
        print("the machine is being measured (/tmp/allocstudy-QUIET): not now", file=sys.stderr)
        return 1
    print(
        f"{'allocator':12} {'internal median':>16} {'p90':>9} {'heap median':>12} {'p90':>9} "
        f"{'log line median':>16} {'p90':>9}"
    )
    for name, library in _libraries().items():
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}
        env["PYTHONPATH"] = str(ROOT)
        if library:
            env["LD_PRELOAD"] = library
        out = subprocess.run(
            [sys.executable, "-c", _TIMER, str(args.reads)],
            env=env, capture_output=True, text=True, timeout=300, check=True,
        )  # fmt: skip
        got = json.loads(out.stdout.splitlines()[-1])
        inner, heap, line = got["internal"], got["heap"], got["line"]
        print(
            f"{name:12} {inner['median_us']:>13.1f} us {inner['p90_us']:>6.1f} us "
            f"{heap['median_us']:>9.1f} us {heap['p90_us']:>6.1f} us "
            f"{line['median_us']:>13.1f} us {line['p90_us']:>6.1f} us"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
