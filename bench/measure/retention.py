"""Where a process's anonymous memory sits: live, free inside the allocator, waiting on a timer...

The memory sampler says how much anonymous memory a process holds; this module says where it
sits, from two witnesses read at one instant inside the process (service.retentionlog): the
allocator's own statistics (its family's `internal_stats`) and the kernel's view of the
process (`/proc/self/status` RssAnon at every reading; smaps_rollup's LazyFree every few, the
last one carried to the readings between, with its age in the source). Each component is a
number the allocator or the kernel states, with the statistic it came from; nothing is
derived by subtraction from the total except the explicit `unaccounted` row, so the
components plus `unaccounted` add up to the anonymous memory exactly, and a large
`unaccounted` is a visible failure of the breakdown rather than a hidden one.

Components, in page order:
- `live`: bytes the program holds (the allocator's in-use count).
- `free`: free inside the allocator but resident: free chunks between live blocks, caches,
  partly used pages (glibc `fordblks`; jemalloc `active - allocated`; gperftools' page heap and
  caches; mimalloc `commit - live`).
- `timer`: freed pages the allocator will return later, on a timer (jemalloc's dirty pages).
- `metadata`: the allocator's own bookkeeping (jemalloc `stats.metadata`).
- `lazy`: pages given back with MADV_FREE, still counted until the kernel needs them
  (smaps_rollup `LazyFree`).
- `interpreter`: the interpreter's own arenas, which pymalloc maps directly, not through malloc.
- `unaccounted`: the anonymous memory minus all of the above (stacks, libraries' data, what no
  statistic names); may be negative when a statistic counts pages never touched.

A component a family cannot state is absent (with why), never guessed and never zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMPONENTS",
    "FAMILY_PARTS",
    "NATIVE_NAMES",
    "normalise",
    "Phases",
    "table_rows",
    "unaccounted_flag",
    "COMPONENT_TITLES",
    "UNACCOUNTED_SHARE_FLAG",
    "Breakdown",
    "breakdown",
    "rows",
]

COMPONENTS: tuple[str, ...] = (
    "live",
    "free",
    "timer",
    "metadata",
    "lazy",
    "interpreter",
    "unaccounted",
)

COMPONENT_TITLES: dict[str, str] = {
    "live": "live (the program's)",
    "free": "free inside the allocator",
    "timer": "waiting on a timer",
    "metadata": "allocator's bookkeeping",
    "lazy": "lazily freed (MADV_FREE)",
    "interpreter": "interpreter's arenas",
    "unaccounted": "unaccounted",
}

#: A breakdown whose unaccounted share of the anonymous memory exceeds this is flagged.
UNACCOUNTED_SHARE_FLAG = 0.10


@dataclass(frozen=True)
class Breakdown:
    """One process at one instant: component -> (bytes, source), and what was absent and why."""

    anon_bytes: int
    parts: dict[str, tuple[int, str]]
    absent: dict[str, str]
    anon_source: str = "status RssAnon"

    @property
    def unaccounted(self) -> int:
        return self.parts["unaccounted"][0]

    @property
    def flagged(self) -> bool:
        """The statistics leave more than a tenth of the anonymous memory unexplained."""
        return self.anon_bytes > 0 and abs(self.unaccounted) > UNACCOUNTED_SHARE_FLAG * (
            self.anon_bytes
        )


#: How each family's statistics (as its in-process reader, service.allocators.<family>,
#: names them) make the components: component -> (added fields, subtracted fields). `heap` is
#: the heap count (service.allocators.heap), mimalloc's only live figure. A component whose
#: fields the reader did not return is absent, with the reader's reason.
FAMILY_PARTS: dict[str, dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "glibc": {
        "live": (("live",), ()),
        "free": (("free_in_heaps",), ()),
    },
    "jemalloc": {
        "live": (("live",), ()),
        "free": (("active",), ("live",)),
        "timer": (("dirty",), ()),
        "metadata": (("metadata",), ()),
    },
    "tcmalloc": {
        "live": (("live",), ()),
        "free": (
            (
                "pageheap_free",
                "central_cache_free",
                "transfer_cache_free",
                "thread_cache_free",
            ),
            (),
        ),
    },
    "mimalloc": {
        "live": (("heap",), ()),
        "free": (("current_commit",), ("heap",)),
    },
}

#: The C++ control's log names each statistic natively (cxx/churn.cpp); the same fields.
NATIVE_NAMES: dict[str, str] = {
    "mallinfo2.uordblks+hblkhd": "live",
    "mallinfo2.fordblks": "free_in_heaps",
    "stats.allocated": "live",
    "stats.active": "active",
    "stats.metadata": "metadata",
    "stats.arenas.4096.pdirty": "dirty",
    "generic.current_allocated_bytes": "live",
    "tcmalloc.pageheap_free_bytes": "pageheap_free",
    "tcmalloc.central_cache_free_bytes": "central_cache_free",
    "tcmalloc.transfer_cache_free_bytes": "transfer_cache_free",
    "tcmalloc.thread_cache_free_bytes": "thread_cache_free",
    "mi_process_info.current_commit": "current_commit",
}

#: Why a family has no figure for a component at all (not a statistic missing from a version).
FAMILY_LACKS: dict[str, dict[str, str]] = {
    "glibc": {
        "timer": "glibc has no return timer: it trims a heap's top when a free reaches it",
        "metadata": "glibc keeps its chunk headers inside the chunks it counts",
    },
    "tcmalloc": {
        "timer": "gperftools returns pages at a pace set by its release rate, not on a timer",
        "metadata": "gperftools states no bookkeeping bytes among its numeric properties",
    },
    "mimalloc": {
        "timer": "mimalloc does not state how many pages await its purge delay",
        "metadata": "mimalloc states no bookkeeping bytes apart from its commit",
    },
}


def _flat(
    internal: Mapping[str, Any],
) -> tuple[str, dict[str, int], dict[str, str], dict[str, str]]:
    """(family, field -> bytes, field -> source, field -> why absent) from either shape: a
    worker's reading (`{"malloc": {"family", "bytes", "source", "absent"}, "heap", "python"}`)
    or the C++ control's (`{"family", "raw": {native name: bytes}, "absent"}`)."""
    if "malloc" in internal:
        malloc = internal.get("malloc") or {}
        values = dict(malloc.get("bytes") or {})
        sources = dict(malloc.get("source") or {})
        missing = dict(malloc.get("absent") or {})
        heap = internal.get("heap") or {}
        if heap.get("bytes") is not None:
            values["heap"] = int(heap["bytes"])
            sources["heap"] = str(heap.get("source") or "the heap count")
        else:
            missing["heap"] = str(heap.get("source") or "no heap count was read")
        return str(malloc.get("family") or ""), values, sources, missing
    values, sources = {}, {}
    raw = dict(internal.get("raw") or {})
    if "mallinfo2.uordblks" in raw and "mallinfo2.hblkhd" in raw:
        raw["mallinfo2.uordblks+hblkhd"] = raw["mallinfo2.uordblks"] + raw["mallinfo2.hblkhd"]
    for native, value in raw.items():
        if (name := NATIVE_NAMES.get(native)) is not None and value is not None:
            values[name] = int(value)
            sources[name] = native
    if str(internal.get("family")) == "mimalloc" and "current_commit" in values:
        missing = {"heap": "the C++ control does not walk mimalloc's heap"}
    else:
        missing = {}
    missing.update(
        {NATIVE_NAMES.get(k, k): str(v) for k, v in (internal.get("absent") or {}).items()}
    )
    return str(internal.get("family") or ""), values, sources, missing


def normalise(internal: Mapping[str, Any]) -> dict[str, Any]:
    """A process's reading as the component fields `breakdown` reads, each with the
    expression of the statistics it came from as its source."""
    family, values, origin, missing = _flat(internal)
    fields: dict[str, int] = {}
    sources: dict[str, str] = {}
    absent: dict[str, str] = dict(FAMILY_LACKS.get(family, {}))
    for component, (plus, minus) in FAMILY_PARTS.get(family, {}).items():
        lacking = [f for f in (*plus, *minus) if values.get(f) is None]
        if lacking:
            absent[component] = "; ".join(
                f"{f}: {missing.get(f, 'not returned by the reader')}" for f in lacking
            )
            continue
        fields[component] = sum(values[f] for f in plus) - sum(values[f] for f in minus)
        sources[component] = " + ".join(origin.get(f, f) for f in plus) + "".join(
            f" - {origin.get(f, f)}" for f in minus
        )
    python = internal.get("python") or {}
    arenas = (python.get("bytes") or {}).get("arenas")
    if arenas is not None:
        fields["interpreter"] = int(arenas)
        sources["interpreter"] = str((python.get("source") or {}).get("arenas") or "pymalloc")
    else:
        absent["interpreter"] = str(
            (python.get("absent") or {}).get("arenas") or "not a Python process"
        )
    if not family:
        absent.setdefault("live", "the allocator serving malloc was not recognised")
    return {"family": family, "fields": fields, "sources": sources, "absent": absent}


def _field(stats: Mapping[str, Any], name: str) -> int | None:
    value = (stats.get("fields") or {}).get(name)
    return int(value) if value is not None else None


def _source(stats: Mapping[str, Any], name: str, default: str) -> str:
    return str((stats.get("sources") or {}).get(name) or default)


def _why(stats: Mapping[str, Any], name: str, default: str) -> str:
    return str((stats.get("absent") or {}).get(name) or default)


def _allocator_parts(
    stats: Mapping[str, Any],
) -> tuple[dict[str, tuple[int, str]], dict[str, str]]:
    """The allocator's own components from its family's statistics (service.allocstats)."""
    family = str(stats.get("family") or "")
    parts: dict[str, tuple[int, str]] = {}
    absent: dict[str, str] = {}

    def put(component: str, field: str, why: str) -> None:
        if (value := _field(stats, field)) is not None:
            parts[component] = (value, _source(stats, field, field))
        else:
            absent[component] = _why(stats, field, why)

    put("live", "live", f"{family or 'this allocator'} states no bytes in use")
    put("free", "free", f"{family or 'this allocator'} states no free bytes")
    put("timer", "timer", f"{family or 'this allocator'} has no pages waiting on a timer")
    put("metadata", "metadata", f"{family or 'this allocator'} states no bookkeeping bytes")
    put("interpreter", "interpreter", "the interpreter's arenas were not counted")
    return parts, absent


def _anon(kernel: Mapping[str, int]) -> tuple[int, str]:
    """The anonymous memory a breakdown adds up to: RssAnon (read at every reading; a
    worker shares no anonymous pages, so it equals the Pss_Anon the sampler sums)."""
    if "Rss_Anon" in kernel:
        return int(kernel["Rss_Anon"]), "status RssAnon"
    return int(kernel["Pss_Anon"]), "smaps_rollup Pss_Anon"


def breakdown(
    stats: Mapping[str, Any], kernel: Mapping[str, int], *, lazy_source: str | None = None
) -> Breakdown:
    """Components of one process's anonymous memory at one instant.

    `stats` is the process's `internal` record: `{"family", "fields": {name: bytes},
    "sources": {name: statistic}, "absent": {name: why}}` with the normalised field names
    `live`, `free`, `timer`, `metadata`, `interpreter`. `kernel` holds `Rss_Anon` (or
    `Pss_Anon`) and `LazyFree` when read, in bytes; `lazy_source` says where a LazyFree
    carried from an earlier reading came from.
    """
    anon, anon_source = _anon(kernel)
    parts, absent = _allocator_parts(stats)
    if (lazy := kernel.get("LazyFree")) is not None:
        parts["lazy"] = (int(lazy), lazy_source or "smaps_rollup LazyFree")
    else:
        absent["lazy"] = "smaps_rollup's LazyFree was not read"
    named = sum(b for b, _ in parts.values())
    parts["unaccounted"] = (anon - named, f"{anon_source} minus every component above")
    ordered = {c: parts[c] for c in COMPONENTS if c in parts}
    return Breakdown(anon_bytes=anon, parts=ordered, absent=absent, anon_source=anon_source)


def rows(
    found: Breakdown, *, allocator: str, repeat: int, worker: str, moment: str, t_s: float
) -> list[dict[str, Any]]:
    """The long-table rows of one breakdown (bench.results.tables "retention"): one per
    component present, one per component absent (bytes null, the reason as its source), and
    the anonymous memory itself as component `anon` so a reader can check the sum."""
    common = {"allocator": allocator, "repeat": repeat, "worker": worker, "moment": moment}
    out = [
        {
            **common,
            "t_s": t_s,
            "component": "anon",
            "bytes": found.anon_bytes,
            "source": found.anon_source,
        }
    ]
    for component, (value, source) in found.parts.items():
        out.append({**common, "t_s": t_s, "component": component, "bytes": value, "source": source})
    for component, why in found.absent.items():
        out.append(
            {
                **common,
                "t_s": t_s,
                "component": component,
                "bytes": None,
                "source": f"absent: {why}",
            }
        )
    return out


def summed(breakdowns: Sequence[Breakdown]) -> dict[str, int | None]:
    """Component totals over processes (a service's workers) at one moment; a component absent
    in any process is None in the total (a sum over some would pass for all of them)."""
    total: dict[str, int | None] = {"anon": sum(b.anon_bytes for b in breakdowns)}
    for component in COMPONENTS:
        values = [b.parts.get(component) for b in breakdowns]
        total[component] = (
            sum(v[0] for v in values if v is not None)
            if breakdowns and all(v is not None for v in values)
            else None
        )
    return total


@dataclass(frozen=True)
class Phases:
    """A repeat's phase boundaries on CLOCK_MONOTONIC (the clock every process shares):
    `origin` is the repeat's zero, the load runs from `load_start` to `load_end`, the idle
    from there to `idle_end`."""

    origin: float
    load_start: float
    load_end: float
    idle_end: float

    def moment(self, t: float) -> str | None:
        """The phase a reading at `t` belongs to (None: after the idle ended)."""
        if t < self.load_start:
            return "ready"
        if t <= self.load_end:
            return "load"
        return "idle" if t <= self.idle_end else None


def _marks(lines: Sequence[Mapping[str, Any]], phases: Phases) -> dict[int, str]:
    """Which of one worker's readings stand for the moments the article compares: `ready`
    (the last before the load), `peak` (the load's largest anonymous memory), `load_end` (the
    last in the load) and `settled` (the last in the idle)."""
    by_moment: dict[str, list[int]] = {}
    for i, line in enumerate(lines):
        if (moment := phases.moment(float(line["t"]))) is not None:
            by_moment.setdefault(moment, []).append(i)
    marks: dict[int, str] = {}
    if ready := by_moment.get("ready"):
        marks[ready[-1]] = "ready"
    if load := by_moment.get("load"):
        marks[max(load, key=lambda i: _anon(lines[i]["kernel"])[0])] = "peak"
        marks.setdefault(load[-1], "load_end")
    if idle := by_moment.get("idle"):
        marks[idle[-1]] = "settled"
    return marks


def table_rows(
    lines_by_worker: Mapping[str, Sequence[Mapping[str, Any]]],
    phases: Phases,
    *,
    allocator: str,
    repeat: int,
    experiment: str = "service",
) -> list[dict[str, Any]]:
    """The retention table's rows for one repeat, from each worker's log lines
    (service.retentionlog): every reading inside the repeat, labelled with its phase
    (`moment`), its seconds on the repeat's clock and into the idle, and, for the readings that
    stand for them, its `mark`. (When the load's last reading is also its peak it is marked
    `peak`; `load_end` then names no reading of that worker.)"""
    out: list[dict[str, Any]] = []
    for worker, lines in lines_by_worker.items():
        ordered = sorted(lines, key=lambda line: float(line["t"]))
        marks = _marks(ordered, phases)
        lazy: tuple[float, int] | None = None  # the last LazyFree read, and when
        for i, line in enumerate(ordered):
            t = float(line["t"])
            kernel = dict(line.get("kernel") or {})
            lazy_source = None
            if "LazyFree" in kernel:
                lazy = (t, int(kernel["LazyFree"]))
            elif lazy is not None:
                kernel["LazyFree"] = lazy[1]
                lazy_source = f"smaps_rollup LazyFree, read {t - lazy[0]:.1f} s before"
            if (moment := phases.moment(t)) is None or not {"Rss_Anon", "Pss_Anon"} & set(kernel):
                continue
            found = breakdown(
                normalise(line.get("internal") or {}), kernel, lazy_source=lazy_source
            )
            for row in rows(
                found,
                allocator=allocator,
                repeat=repeat,
                worker=worker,
                moment=moment,
                t_s=round(t - phases.origin, 3),
            ):
                row["experiment"] = experiment
                row["mark"] = marks.get(i)
                row["idle_t_s"] = round(t - phases.load_end, 3) if moment == "idle" else None
                out.append(row)
    return out


def unaccounted_flag(table: Sequence[Mapping[str, Any]]) -> str | None:
    """The repeat's note when, summed over its workers at the settled reading, the statistics
    leave more than a tenth of the anonymous memory unaccounted (either way); None if not."""
    settled = [r for r in table if r.get("mark") == "settled" and r.get("bytes") is not None]
    anon = sum(r["bytes"] for r in settled if r["component"] == "anon")
    rest = sum(r["bytes"] for r in settled if r["component"] == "unaccounted")
    if anon <= 0 or abs(rest) <= UNACCOUNTED_SHARE_FLAG * anon:
        return None
    how = "more than the kernel counts" if rest < 0 else "unexplained"
    return (
        f"the allocator's statistics leave {abs(rest) / anon:.0%} of the settled memory "
        f"{how} (retention.arrow)"
    )
