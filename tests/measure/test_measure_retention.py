"""The breakdown of a process's anonymous memory: components sum to it, absences say why."""

from __future__ import annotations

from bench.measure.retention import COMPONENTS, breakdown, rows, summed

MiB = 1 << 20


def _jemalloc(live: int, free: int, dirty: int, meta: int) -> dict:
    return {
        "family": "jemalloc",
        "fields": {"live": live, "free": free, "timer": dirty, "metadata": meta},
        "sources": {"live": "stats.allocated", "timer": "stats.arenas.4096.pdirty"},
        "absent": {"interpreter": "PYTHONMALLOC=malloc: no pymalloc arenas"},
    }


def test_components_and_unaccounted_add_up_to_the_anonymous_memory() -> None:
    found = breakdown(
        _jemalloc(100 * MiB, 20 * MiB, 30 * MiB, 5 * MiB),
        {"Pss_Anon": 170 * MiB, "LazyFree": 4 * MiB},
    )
    assert sum(b for b, _ in found.parts.values()) == found.anon_bytes
    assert found.unaccounted == 11 * MiB
    assert not found.flagged
    assert found.parts["timer"] == (30 * MiB, "stats.arenas.4096.pdirty")
    assert found.parts["free"][1] == "free"  # no source named: the field's own name
    assert found.absent == {"interpreter": "PYTHONMALLOC=malloc: no pymalloc arenas"}
    assert list(found.parts) == [c for c in COMPONENTS if c in found.parts]


def test_a_large_unexplained_share_is_flagged_either_way() -> None:
    over = breakdown(_jemalloc(100 * MiB, 0, 0, 0), {"Pss_Anon": 120 * MiB, "LazyFree": 0})
    assert over.flagged and over.unaccounted == 20 * MiB
    under = breakdown(_jemalloc(100 * MiB, 30 * MiB, 0, 0), {"Pss_Anon": 110 * MiB})
    assert under.flagged and under.unaccounted == -20 * MiB
    assert "LazyFree" in under.absent["lazy"]


def test_a_family_without_a_statistic_records_it_absent_never_zero() -> None:
    glibc = {"family": "glibc", "fields": {"live": 10 * MiB, "free": 3 * MiB}}
    found = breakdown(glibc, {"Pss_Anon": 14 * MiB, "LazyFree": 0})
    assert "timer" not in found.parts and "glibc" in found.absent["timer"]
    table = rows(found, allocator="glibc", repeat=0, worker="1", moment="idle_end", t_s=3.0)
    by = {r["component"]: r for r in table}
    assert by["anon"]["bytes"] == 14 * MiB
    assert by["timer"]["bytes"] is None and by["timer"]["source"].startswith("absent: ")
    assert (
        sum(r["bytes"] for r in table if r["bytes"] is not None and r["component"] != "anon")
        == 14 * MiB
    )


def test_a_total_over_workers_is_none_where_any_worker_lacks_the_component() -> None:
    a = breakdown(_jemalloc(10, 1, 2, 0), {"Pss_Anon": 20, "LazyFree": 0})
    b = breakdown({"family": "jemalloc", "fields": {"live": 10}}, {"Pss_Anon": 15, "LazyFree": 0})
    total = summed([a, b])
    assert total["anon"] == 35 and total["live"] == 20 and total["timer"] is None


def test_a_workers_reading_becomes_components_with_their_expression_as_source() -> None:
    from bench.measure.retention import normalise

    jem = normalise(
        {
            "malloc": {
                "family": "jemalloc",
                "bytes": {"live": 100, "active": 130, "metadata": 7, "dirty": 40},
                "source": {"live": "mallctl stats.allocated", "active": "mallctl stats.active"},
            },
            "heap": {"bytes": 100, "source": "jemalloc stats.allocated"},
            "python": {"bytes": {"arenas": 9}, "source": {"arenas": "sys._debugmallocstats"}},
        }
    )
    assert jem["fields"] == {"live": 100, "free": 30, "timer": 40, "metadata": 7, "interpreter": 9}
    assert jem["sources"]["free"] == "mallctl stats.active - mallctl stats.allocated"
    glibc = normalise(
        {
            "malloc": {
                "family": "glibc",
                "bytes": {"live": 11},
                "absent": {"free_in_heaps": "a test"},
            },
            "python": {"absent": {"arenas": "PYTHONMALLOC=malloc"}},
        }
    )
    assert glibc["fields"] == {"live": 11}
    assert glibc["absent"]["free"] == "free_in_heaps: a test"
    assert glibc["absent"]["interpreter"] == "PYTHONMALLOC=malloc"
    assert "trims" in glibc["absent"]["timer"]
    mim = normalise(
        {
            "malloc": {"family": "mimalloc", "bytes": {"current_commit": 50}},
            "heap": {"bytes": 20, "source": "mimalloc heap walk"},
        }
    )
    assert mim["fields"] == {"live": 20, "free": 30}


def test_the_controls_native_names_make_the_same_components() -> None:
    from bench.measure.retention import normalise

    glibc = normalise(
        {
            "family": "glibc",
            "raw": {"mallinfo2.uordblks": 5, "mallinfo2.hblkhd": 6, "mallinfo2.fordblks": 4},
        }
    )
    assert glibc["fields"] == {"live": 11, "free": 4}
    assert glibc["sources"]["live"] == "mallinfo2.uordblks+hblkhd"
    assert glibc["absent"]["interpreter"] == "not a Python process"
    tc = normalise(
        {
            "family": "tcmalloc",
            "raw": {
                "generic.current_allocated_bytes": 10,
                "tcmalloc.pageheap_free_bytes": 1,
                "tcmalloc.central_cache_free_bytes": 2,
                "tcmalloc.transfer_cache_free_bytes": 3,
            },
            "absent": {"tcmalloc.thread_cache_free_bytes": "not answered"},
        }
    )
    assert tc["fields"] == {"live": 10}
    assert tc["absent"]["free"] == "thread_cache_free: not answered"


def test_a_repeats_readings_are_labelled_by_phase_and_marked() -> None:
    from bench.measure.retention import Phases, table_rows

    def line(t: float, anon: int, dirty: int) -> dict:
        raw = {
            "stats.allocated": 10,
            "stats.active": 12,
            "stats.metadata": 1,
            "stats.arenas.4096.pdirty": dirty,
        }
        return {
            "t": t,
            "internal": {"family": "jemalloc", "raw": raw},
            "kernel": {"Pss_Anon": anon, "LazyFree": 0},
        }

    phases = Phases(origin=100.0, load_start=102.0, load_end=110.0, idle_end=120.0)
    lines = [
        line(101, 20, 0),
        line(103, 50, 5),
        line(105, 80, 30),
        line(109, 60, 20),
        line(115, 40, 10),
        line(119, 30, 0),
        line(125, 30, 0),
    ]
    rows = table_rows({"7": lines}, phases, allocator="jemalloc", repeat=1)
    anon = [
        (r["moment"], r["mark"], r["t_s"], r["idle_t_s"], r["bytes"])
        for r in rows
        if r["component"] == "anon"
    ]
    assert anon == [
        ("ready", "ready", 1.0, None, 20),
        ("load", None, 3.0, None, 50),
        ("load", "peak", 5.0, None, 80),
        ("load", "load_end", 9.0, None, 60),
        ("idle", None, 15.0, 5.0, 40),
        ("idle", "settled", 19.0, 9.0, 30),
    ]
    settled = {r["component"]: r["bytes"] for r in rows if r["mark"] == "settled"}
    assert settled["timer"] == 0 and settled["unaccounted"] == 30 - 10 - 2 - 0 - 1 - 0
    assert {r["worker"] for r in rows} == {"7"} and {r["repeat"] for r in rows} == {1}


def test_lazily_freed_pages_are_carried_to_the_readings_without_smaps_with_their_age() -> None:
    from bench.measure.retention import Phases, table_rows

    def line(t: float, anon: int, lazy: int | None) -> dict:
        kernel = {"Rss_Anon": anon} | ({"LazyFree": lazy} if lazy is not None else {})
        return {
            "t": t,
            "internal": {"malloc": {"family": "glibc", "bytes": {"live": 10}}},
            "kernel": kernel,
        }

    phases = Phases(origin=0.0, load_start=1.0, load_end=5.0, idle_end=9.0)
    rows = table_rows(
        {"1": [line(0.5, 20, 3), line(2.0, 30, None), line(6.5, 40, None)]},
        phases,
        allocator="glibc",
        repeat=0,
    )
    lazy = [(r["t_s"], r["bytes"], r["source"]) for r in rows if r["component"] == "lazy"]
    assert lazy == [
        (0.5, 3, "smaps_rollup LazyFree"),
        (2.0, 3, "smaps_rollup LazyFree, read 1.5 s before"),
        (6.5, 3, "smaps_rollup LazyFree, read 6.0 s before"),
    ]
    anon = [r for r in rows if r["component"] == "anon"]
    assert [r["source"] for r in anon] == ["status RssAnon"] * 3
    settled = {r["component"]: r["bytes"] for r in rows if r["mark"] == "settled"}
    assert settled["unaccounted"] == 40 - 10 - 3


def test_a_repeat_whose_statistics_leave_a_tenth_unaccounted_is_flagged() -> None:
    from bench.measure.retention import unaccounted_flag

    def rows(anon: int, rest: int) -> list[dict]:
        return [
            {"mark": "settled", "component": "anon", "bytes": anon},
            {"mark": "settled", "component": "unaccounted", "bytes": rest},
            {"mark": None, "component": "unaccounted", "bytes": 10 * anon},
        ]

    assert unaccounted_flag(rows(100, 10)) is None
    assert unaccounted_flag(rows(100, 11)) == (
        "the allocator's statistics leave 11% of the settled memory unexplained (retention.arrow)"
    )
    assert "29% of the settled memory more than the kernel counts" in (
        unaccounted_flag(rows(613, -178)) or ""
    )
    assert unaccounted_flag([]) is None
