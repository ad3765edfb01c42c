"""The C++ control per CPU-second and its rest; allocator versions here and in the original."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from material import cells, material, text_of
from synthetic_run import DEFAULT_ALLOCS, REPO, Alloc

TEMPLATE = (REPO / "docs" / "_article.md").read_text(encoding="utf-8")

#: Wall-clock order glibc < jemalloc < tcmalloc < mimalloc-v3; per CPU-second the reverse.
REVERSED_PER_CPU = tuple(
    replace(a, cpu_mops={"glibc": 20.0, "jemalloc": 15.0, "tcmalloc": 9.0}.get(a.name, 5.0))
    for a in DEFAULT_ALLOCS
)


def _caption(html: str) -> str:
    return text_of(re.search(r"<figcaption>(.*?)</figcaption>", html, re.S).group(1))  # type: ignore[union-attr]


def test_throughput_per_cpu_second_is_shown_beside_per_second(tmp_path: Path):
    m = material(tmp_path)
    rows = cells(m.chart("throughput"))
    assert rows[0][:3] == ["allocator", "per second, mean", "per CPU-second, mean"]
    top = dict(zip(rows[0], rows[1], strict=True))
    assert top["allocator"] == "mimalloc-v3"  # ranked by the wall figure
    assert top["per second, mean"] == m.values["alloc.mimalloc-v3.control.mops"]
    assert top["per CPU-second, mean"] == m.values["alloc.mimalloc-v3.control.mops_per_cpu"]
    assert m.values["control.fastest_per_cpu.name"] == "mimalloc-v3"
    assert m.say("control_other").startswith("Counted per CPU-second of churn instead")
    assert "had a CPU for each of its 4 threads" in m.say("control_oversubscription")


def test_an_oversubscribed_control_is_ranked_per_cpu_second(tmp_path: Path):
    m = material(tmp_path, allocs=REVERSED_PER_CPU, control_threads=4, control_cpus=2)
    assert m.values["control.oversubscribed"] == "yes"
    note = m.say("control_oversubscription")
    assert note.startswith("The control ran 4 threads on fewer CPUs than threads")
    assert "per CPU-second, which count only the time the threads ran, are the fairer" in note
    assert m.say("control_throughput").startswith(
        "In the C++ control per CPU-second, glibc is the fastest at 20.0 million per CPU-second"
    )
    assert m.say("control_ranking").startswith("From fastest to slowest: glibc (20.0 million")
    assert m.say("control_other").startswith("Counted per wall-clock second instead")
    chart = m.chart("throughput")
    assert "allocations per CPU-second of churn (millions)" in chart
    assert cells(chart)[1][0] == "glibc"
    assert "the control had more threads than CPUs" in _caption(chart)


def test_the_dumbbell_says_when_the_control_rested_less_than_the_service(tmp_path: Path):
    short = _caption(material(tmp_path / "short", control_idle_s=5.0).chart("dumbbell"))
    assert "The control rested 5 s after its churn, less than the service's 30 s of idle" in short
    same = _caption(material(tmp_path / "same").chart("dumbbell"))
    assert "rested" not in same


def test_allocators_table_shows_the_version_here_beside_the_original_studys(tmp_path: Path):
    rows = {r[0]: r for r in cells(material(tmp_path).table("allocators"))}
    head = rows["allocator"]
    assert head[2:4] == ["version here", "original study"]
    assert rows["jemalloc"][2].startswith("5.3.0") and rows["jemalloc"][3] == "jemalloc 5.3"
    assert rows["glibc"][3] == "ptmalloc2 (version not given)"
    assert rows["tcmalloc"][3] == "gperftools tcmalloc, minimal (version not given)"
    assert rows["mimalloc-v2"][2] == "not recorded" and rows["mimalloc-v2"][3] == "mimalloc 2.x"
    assert rows["mimalloc-bun"][3] == "Bun's fork of mimalloc v3"


def _with_v2(version: str) -> tuple[Alloc, ...]:
    return tuple(
        Alloc("mimalloc-v2", 47, 330, 200, 1.1, 3.9, 38.0, 172, version=version)
        if a.name == "mimalloc-v2"
        else a
        for a in DEFAULT_ALLOCS
    )


def test_an_old_mimalloc_v2_gets_the_purge_caveat_once_where_keep_versus_return_is(
    tmp_path: Path,
):
    m = material(tmp_path, allocs=_with_v2("2.0.9"))
    note = m.say("version_notes")
    assert note.startswith("mimalloc-v2 here is mimalloc 2.0.9, of the 2.0 series: that predates")
    assert "purge semantics of mimalloc 2.1" in note and "may differ from a current v2" in note
    page = m.page(TEMPLATE)
    assert page.count("predates the purge semantics") == 1
    keep = page.index("## Keep versus return")
    assert keep < page.index("predates the purge semantics") < page.index("## Does the leaner")


def test_no_purge_caveat_for_a_current_or_unmeasured_mimalloc_v2(tmp_path: Path):
    assert material(tmp_path / "new", allocs=_with_v2("2.1.7")).say("version_notes") == ""
    assert material(tmp_path / "failed").say("version_notes") == ""  # v2 failed: no numbers
