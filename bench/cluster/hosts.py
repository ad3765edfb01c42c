"""Benchmark hosts: what each one is (its fingerprint and kind), and how cells find them.

Every benchmark host runs one Dask worker with one thread that advertises the resource
`bench_host=1`; a cell asks for one unit of it, so a host never runs two cells at once.
A host may advertise more resources that say what it is, one per fact, named `key:value`
(`arch:aarch64=1`, `instance:c7g.xlarge=1`); a requirement `arch=aarch64` (from the spec's `hosts:`
or `--require`) becomes a request for one unit of `arch:aarch64`, which routes the cell to such
hosts. (Dask's own `--resources` syntax takes `name=amount`, so the name cannot hold `=`.)

The fingerprint is what a reader needs to tell hosts apart, and the kind is the part of it
that makes numbers comparable: two hosts of one kind (same CPU model, core count, memory
class, kernel, C library, page size) may be pooled; hosts of different kinds are shown apart.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from typing import Any

from bench.errors import UsageError
from bench.measure import machine
from bench.measure.groups import cgroup_support
from bench.toolinfo import library_versions

__all__ = [
    "BENCH_HOST",
    "fingerprint",
    "kind_label",
    "local_resources",
    "parse_requirement",
    "resource_name",
    "resources_for",
]

#: The resource every benchmark host advertises once, and every cell asks one of.
BENCH_HOST = "bench_host"


def fingerprint() -> dict[str, Any]:
    """This host as the manifest records it: bench.measure.machine's host facts, plus the
    page size, the memory cgroup mode, transparent huge pages and library versions."""
    info = dict(machine.host_info())
    support = cgroup_support()
    info.update(
        page_size=os.sysconf("SC_PAGE_SIZE"),
        cgroup_mode=support.mode,
        thp=machine.thp_mode(),
        python_implementation=platform.python_implementation(),
        libraries=library_versions(),
    )
    return info


def kind_label(fp: Mapping[str, Any]) -> str:
    """The kind of a host, as one readable label: its numbers pool only with its own kind.

    Memory is rounded to whole GiB (two instances of one type differ by a few MiB).
    """
    memory = fp.get("memory_bytes")
    gib = f"{round(memory / 2**30)} GiB" if isinstance(memory, int) else "? GiB"
    return (
        f"{fp.get('cpu_model')} ({fp.get('machine')}), {fp.get('cores')} cores, {gib}, "
        f"kernel {fp.get('kernel')}, glibc {fp.get('glibc')}, {fp.get('page_size')} B pages, "
        f"cgroup {fp.get('cgroup_mode')}"
    )


def parse_requirement(text: str) -> tuple[str, str]:
    """`arch=aarch64` as (`arch`, `aarch64`); UsageError for anything else."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    bad = [c for c in " ,=:" if c in key or c in value]
    if not sep or not key or not value or bad:
        raise UsageError(
            f"--require {text!r}: expected KEY=VALUE without spaces, commas or colons, "
            "e.g. --require arch=aarch64"
        )
    return key, value


def resource_name(key: str, value: str) -> str:
    """The worker resource a host of that kind advertises: `arch:aarch64`."""
    return f"{key}:{value}"


def resources_for(requirements: Mapping[str, str]) -> dict[str, float]:
    """The resources one cell asks for: one benchmark host, with every requirement."""
    wanted = {BENCH_HOST: 1.0}
    for key, value in requirements.items():
        wanted[resource_name(key, value)] = 1.0
    return wanted


def local_resources() -> dict[str, float]:
    """What this machine advertises as a one-host local cluster: a benchmark host and its
    architecture (`arch:x86_64`), as a host started by the guide's recipe would."""
    return {BENCH_HOST: 1.0, resource_name("arch", platform.machine()): 1.0}
