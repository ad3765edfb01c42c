"""The banner of a run whose cells ran on more than one kind of host (bench.report.hostkinds)."""

from __future__ import annotations

from bench.report.hostkinds import host_kind_note, settled_by_kind

X86, ARM = "EPYC (x86_64), 2 cores", "Graviton (aarch64), 2 cores"
MANIFEST = {
    "host_kinds": [X86, ARM],
    "hosts": {"a": {"kind": X86}, "b": {"kind": X86}, "c": {"kind": ARM}},
    "allocators": [{"name": "glibc"}, {"name": "jemalloc"}],
}


def _row(host: str, allocator: str, mb: float, experiment: str = "service") -> dict:
    return {
        "host": host,
        "allocator": allocator,
        "experiment": experiment,
        "settled_anon_bytes": int(mb * 1e6),
    }


def test_settled_memory_is_the_median_of_each_kinds_repeats():
    rows = [
        _row("a", "glibc", 100),
        _row("b", "glibc", 110),
        _row("a", "glibc", 300),
        _row("c", "glibc", 90),
        _row("c", "glibc", 999, experiment="control"),  # the control is not the service
        _row("elsewhere", "jemalloc", 50),
    ]
    got = settled_by_kind(MANIFEST, rows)
    assert got == {X86: {"glibc": 110.0}, ARM: {"glibc": 90.0}, "unknown": {"jemalloc": 50.0}}


def test_one_kind_of_host_needs_no_note():
    assert host_kind_note({**MANIFEST, "host_kinds": [X86]}, [_row("a", "glibc", 1)]) is None
    assert host_kind_note({}, []) is None  # a local run's manifest has no host kinds


def test_two_kinds_are_set_apart_with_their_hosts_and_a_dash_where_one_was_not_measured():
    note = host_kind_note(MANIFEST, [_row("a", "glibc", 100), _row("c", "jemalloc", 80)])
    assert note is not None and "2 kinds of host" in note
    assert f"<tr><td>{X86}</td><td>a, b</td><td>100</td><td>—</td></tr>" in note
    assert f"<tr><td>{ARM}</td><td>c</td><td>—</td><td>80</td></tr>" in note
