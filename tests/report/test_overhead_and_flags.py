"""The overhead ratio, the share given back, flagged repeats and allocators without data."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from material import cells, material
from synthetic_run import DEFAULT_ALLOCS, REPO, Alloc, swapped

from bench.report.units import fmt_ratio
from bench.results.tables import read_table

TEMPLATE = (REPO / "docs" / "_article.md").read_text(encoding="utf-8")


def _by_allocator(m, column: str) -> dict[str, list[float]]:
    rows = read_table(m.view.study.current.path / "summary.arrow", "summary").to_pylist()
    by: dict[str, list[float]] = {}
    for r in rows:
        if r["experiment"] == "service" and r[column] is not None:
            by.setdefault(r["allocator"], []).append(r[column])
    return by


def _summary_means(m, column: str) -> dict[str, float]:
    return {k: statistics.fmean(v) for k, v in _by_allocator(m, column).items()}


def _with_interval(values: list[float]) -> str:
    """'4.0× ±2.5%': the mean and the half-width of its 95% t-interval, by hand."""
    mean = statistics.fmean(values)
    half = {2: 12.706, 3: 4.303}[len(values)] * statistics.stdev(values) / len(values) ** 0.5
    pct = half / mean * 100
    return f"{fmt_ratio(mean)} ±{pct:.1f}%" if pct < 9.95 else f"{fmt_ratio(mean)} ±{pct:.0f}%"


def test_overhead_values_equal_the_table(tmp_path: Path):
    m = material(tmp_path, repeats=3)
    settled = _summary_means(m, "overhead_settled")
    peak = _summary_means(m, "overhead_peak")
    settled_rows, peak_rows = (
        _by_allocator(m, "overhead_settled"),
        _by_allocator(m, "overhead_peak"),
    )
    lean = min(settled, key=settled.get)  # type: ignore[arg-type]
    heavy = max(settled, key=settled.get)  # type: ignore[arg-type]
    v = m.values
    assert v["leanest_overhead_settled.name"] == lean
    assert v["leanest_overhead_settled.ratio"] == fmt_ratio(settled[lean])
    assert v["heaviest_overhead_settled.name"] == heavy
    assert v["heaviest_overhead_settled.ratio"] == fmt_ratio(settled[heavy])
    table = {r[0]: r for r in cells(m.table("headline"))}
    head = table["allocator"]
    for name in settled:
        row = dict(zip(head, table[name], strict=True))
        assert fmt_ratio(settled[name]) == v[f"alloc.{name}.overhead_settled"]
        assert row["overhead settled"] == _with_interval(settled_rows[name])
        assert fmt_ratio(peak[name]) == v[f"alloc.{name}.overhead_peak"]
        assert row["overhead at peak"] == _with_interval(peak_rows[name])
        assert row["given back"] == v[f"alloc.{name}.given_back"]
    assert v["alloc.mimalloc-v3.given_back"] == "52%"  # (310 - 150) / 310


def test_the_overhead_sentence_names_who_costs_most_per_byte_held(tmp_path: Path):
    text = material(tmp_path).say("overhead")
    assert text.startswith("Per byte the program holds, glibc costs the most: once settled")
    assert "for mimalloc-v3, the leanest" in text
    swapped_text = material(
        tmp_path / "swapped", allocs=swapped(DEFAULT_ALLOCS, "glibc", "mimalloc-v3")
    ).say("overhead")
    assert swapped_text.startswith("Per byte the program holds, mimalloc-v3 costs the most")


def test_close_overheads_tie(tmp_path: Path):
    allocs = (
        Alloc("a", peak_mb=300, settled_mb=280),
        Alloc("b", peak_mb=300, settled_mb=283),
        Alloc("c", peak_mb=300, settled_mb=200),
    )
    m = material(tmp_path, allocs=allocs)
    assert "a (2.6×) and b (2.6×) tie for the highest cost" in m.say("overhead")
    assert m.values["heaviest_overhead_settled.name"] == "a and b"


def test_the_headline_names_flagged_numbers_and_why(tmp_path: Path):
    m = material(tmp_path, failed_requests={"jemalloc": 3})
    text = m.say("flags")
    assert text.startswith(
        "jemalloc's service numbers are flagged (repeat 0): 3 of 200 load requests failed "
        "(counted at 10 s or more)."
    )
    rows = {r[0]: r for r in cells(m.table("headline"))}
    assert rows["jemalloc"][-1] == (
        "repeat 0: 3 of 200 load requests failed (counted at 10 s or more)"
    )
    assert rows["glibc"][-1] == "none"
    full = cells(m.table("full"))
    head = full[0]
    flagged = [
        dict(zip(head, r, strict=True))
        for r in full[1:]
        if r[1] == "jemalloc" and r[0] == "service"
    ]
    assert flagged[0]["flags"].startswith("yes: 3 of 200 load requests failed")
    page = m.page(TEMPLATE)
    assert page.index("jemalloc's service numbers are flagged") < page.index("## Keep versus")


def test_an_unflagged_run_says_what_was_checked(tmp_path: Path):
    text = material(tmp_path).say("flags")
    assert text.startswith("No repeat was flagged by the method checks (failed requests")


def test_control_flags_are_grouped_over_repeats_and_allocators(tmp_path: Path):
    m = material(tmp_path, control_threads=4, control_cpus=2, control_idle_s=5.0)
    text = m.say("flags")
    assert (
        "The control numbers of glibc, jemalloc, tcmalloc and mimalloc-v3 are flagged "
        "(repeats 0, 1 and 2): rested 5 s, less than the service's 30 s; 4 threads on 2 CPUs."
        in text
    )
    assert text.count("flagged (") == 1
    assert "its flagged repeats stay in" in text and "service repeats are left out" not in text


def test_an_allocator_without_service_data_is_named_in_every_ranking(tmp_path: Path):
    m = material(tmp_path)
    run = m.view.study.current.path
    rows = read_table(run / "summary.arrow", "summary").to_pylist()
    from bench.results.tables import to_table, write_table

    kept = [r for r in rows if not (r["experiment"] == "service" and r["allocator"] == "tcmalloc")]
    write_table(run / "summary.arrow", "summary", to_table("summary", kept))
    for name in ("settled_ranking", "peak_ranking", "shed_ranking", "overhead", "overhead_ranking"):
        text = m.say(name)
        assert "tcmalloc (no service data recorded)" in text, name
        assert "mimalloc-v2 (failed)" in text and "mimalloc-bun (skipped)" in text, name
    assert "tcmalloc ran but the run recorded no service measurements for it." in m.say(
        "not_measured"
    )
    table = {r[0]: r for r in cells(m.table("headline"))}
    assert table["tcmalloc"][1] == "not measured"
    assert table["mimalloc-bun"][-1] == "skipped: source not reachable offline"


def test_the_full_table_carries_overhead_and_flags_columns(tmp_path: Path):
    m = material(tmp_path)
    head = cells(m.table("full"))[0]
    for column in ("overhead at peak", "overhead settled", "given back %", "flags", "ready MB"):
        assert column in head
    assert head[4] == "settled MB"  # the browser test sorts this column by position


def test_manifest_allocator_with_ok_status_and_no_rows_is_not_dropped(tmp_path: Path):
    m = material(tmp_path)
    path = m.view.study.current.path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["allocators"].append({"name": "ghost", "status": "ok"})
    path.write_text(json.dumps(manifest))
    assert "ghost (no data)" in m.say("settled_ranking")
    assert "ghost (no data: the run recorded no summary rows for it)" in m.say("not_measured")
