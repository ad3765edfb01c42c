"""Allocator versions: the one measured here beside the one the original study used.

The original study's versions are facts of its method (docs: shared/design/study.md), not
data of a run, so they are the only allocator facts this engine holds itself. A version here
comes from the allocator's own answer inside the measured process (the manifest's `version`).
"""

from __future__ import annotations

import re

from bench.report.aggregate import AllocatorInfo

__all__ = [
    "MIMALLOC_PURGE_FROM",
    "ORIGINAL",
    "mimalloc_v2_predates_purge",
    "original_version",
    "parse_version",
    "registry_name",
]

#: What the original study says of each allocator's version (study.md, "The allocators").
ORIGINAL = {
    "glibc": "ptmalloc2 (version not given)",
    "jemalloc": "jemalloc 5.3",
    "tcmalloc": "gperftools tcmalloc, minimal (version not given)",
    "mimalloc-v2": "mimalloc 2.x",
    "mimalloc-v3": "mimalloc 3.x",
    "mimalloc-bun": "Bun's fork of mimalloc v3",
}

#: mimalloc 2.1 changed how and when freed memory is purged (returned to the kernel); the
#: 2.0 series, which Debian ships as libmimalloc2.0, predates that.
MIMALLOC_PURGE_FROM = (2, 1)

_VERSION = re.compile(r"(\d+)\.(\d+)")


def registry_name(info: AllocatorInfo) -> str | None:
    """The built-in allocator an entry is (a variant counts as its base); None for others."""
    if info.base in ORIGINAL:
        return info.base
    return info.name if info.name in ORIGINAL else None


def original_version(info: AllocatorInfo) -> str:
    """The original study's version of this allocator, in its words."""
    name = registry_name(info)
    if name is None:
        return "not in the original study"
    text = ORIGINAL[name]
    return f"{text} (this is a variant of {name})" if info.base == name else text


def parse_version(text: str | None) -> tuple[int, int] | None:
    """(major, minor) of the first dotted number in a version text, e.g. "2.0.9" -> (2, 0)."""
    m = _VERSION.search(text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def mimalloc_v2_predates_purge(info: AllocatorInfo) -> bool:
    """Whether this is mimalloc v2 at a version older than the 2.1 purge semantics."""
    if registry_name(info) != "mimalloc-v2":
        return False
    version = parse_version(info.version)
    return version is not None and version < MIMALLOC_PURGE_FROM
