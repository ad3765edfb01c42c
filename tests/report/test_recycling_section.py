"""The article's recycling section: each recycled allocator against itself without recycling,
judged by the noise rule, what recycling cost; one sentence, no table, for a run without it."""

from __future__ import annotations

import json
from pathlib import Path

from material import Material, cells, material, text_of
from synthetic_run import Alloc

from bench.report.recycled import recycling_of
from bench.report.sections.recycling import NO_RECYCLING
from bench.report.study import StudyView
from bench.results.tables import table_rows, to_table, write_table

REPO = Path(__file__).resolve().parents[2]

#: glibc recycled: much leaner, much slower at p99; jemalloc recycled: within 5% (tied) on
#: memory, slower at p99.
ALLOCS = (
    Alloc("glibc", 48, 420, 410, 1.3, 4.1, 12.0, 190),
    Alloc("glibc-recycled", 48, 300, 200, 1.4, 40.0, 12.0, 190),
    Alloc("jemalloc", 52, 360, 250, 1.2, 4.0, 35.0, 175),
    Alloc("jemalloc-recycled", 52, 355, 248, 1.2, 9.0, 35.0, 175),
)
RESTARTS = {"glibc-recycled": (12, 30), "jemalloc-recycled": (11, 25)}


def _recycling_run(tmp_path: Path) -> Material:
    """A synthetic run whose -recycled variants recycle every 200-220 requests."""
    m = material(tmp_path, allocs=ALLOCS)
    _make_recycling(m.view.study.current.path)
    return Material(StudyView(m.view.study, m.view.roots))  # read afresh: views cache


def _make_recycling(folder: Path) -> None:
    """Give a synthetic run's -recycled allocators their recycling and restart counts."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in [*manifest["spec"]["allocators"], *manifest["allocators"]]:
        name = entry if isinstance(entry, str) else entry["name"]
        if name.endswith("-recycled"):
            entry["base"] = name.removesuffix("-recycled")
            if "kind" not in entry:  # the spec's entry, not the allocator's record
                entry["service"] = {"max_requests": 200, "max_requests_jitter": 20}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    rows = table_rows(folder / "summary.arrow", "summary")
    for r in rows:
        if r["experiment"] == "service":
            r["restarts"], r["requests_during_restart"] = RESTARTS.get(r["allocator"], (0, 0))
    write_table(folder / "summary.arrow", "summary", to_table("summary", rows))


def test_each_recycled_allocator_is_set_against_itself_without_recycling(tmp_path: Path):
    say = _recycling_run(tmp_path).say("recycling")
    assert say.startswith(
        "Each recycled variant restarted every worker after 200-220 requests. glibc-recycled: "
        "workers restarted 12 times, 30 load requests hit a restarting worker and 0 failed. "
        "Against glibc without recycling: peak 300 MB against 420 MB without, 29% lower, "
        "settled 200 MB against 410 MB without, 51% lower, p99 40 ms against 4.1 ms without, "
        "9.8× as high. "
    )


def test_differences_within_the_noise_are_called_tied(tmp_path: Path):
    say = _recycling_run(tmp_path).say("recycling")
    assert "peak 355 MB against 360 MB without, tied, settled 248 MB" in say
    assert "against 250 MB without, tied" in say


def test_the_cost_sentence_says_what_recycling_cost_and_bought(tmp_path: Path):
    say = _recycling_run(tmp_path).say("recycling")
    assert say.endswith(
        "What recycling cost: p99 rose for both; 55 load requests in all hit a restarting "
        "worker, and 0 failed with recycling against 0 without. What it bought: settled memory "
        "fell for glibc-recycled and was tied for jemalloc-recycled, and the peak fell for "
        "glibc-recycled and was tied for jemalloc-recycled."
    )


def test_a_p99_made_of_failed_requests_is_said_to_be_their_charge(tmp_path: Path):
    m = material(tmp_path, allocs=ALLOCS, failed_requests={"glibc-recycled": 5})
    _make_recycling(m.view.study.current.path)
    say = Material(StudyView(m.view.study, m.view.roots)).say("recycling")
    assert "glibc-recycled: workers restarted 12 times, 30 load requests hit a restarting " in say
    assert "worker and 5 failed." in say
    assert "p99 10,000 ms against 4.1 ms without" in say
    assert "that p99 is the 10 s charged to each failed request, more than 1% of them." in say


def test_the_table_has_a_row_per_recycled_allocator(tmp_path: Path):
    rows = cells(_recycling_run(tmp_path).table("recycling"))
    assert rows[0] == [
        "allocator",
        "recycled",
        "restarts",
        "requests hit",
        "peak",
        "settled",
        "p99",
    ]
    assert rows[1][:4] == ["glibc-recycled (against glibc)", "every 200-220 requests", "12", "30"]
    assert rows[2][4] == "355 MB against 360 MB without, tied"
    assert len(rows) == 3


def test_a_run_without_recycling_says_so_in_one_sentence_and_has_no_table(tmp_path: Path):
    m = material(tmp_path)
    assert m.say("recycling") == NO_RECYCLING
    assert m.table("recycling") == ""
    page = m.page((REPO / "docs" / "_article.md").read_text())
    # the page leaves the section off and names the spec that makes the measurement
    assert "Recycling workers" not in page and "no recycling variants" not in page
    assert "allocstudy run specs/recycling.yaml" in page.split("Try next", 1)[1]


def test_the_spec_table_and_the_full_table_name_the_recycling(tmp_path: Path):
    m = _recycling_run(tmp_path)
    spec = text_of(m.table("spec"))
    assert "recycled only under glibc-recycled, jemalloc-recycled" in spec
    full = cells(m.table("full"))
    assert "restarts" in full[0] and "hit a restart" in full[0]
    glibc_recycled = next(r for r in full if r[:2] == ["service", "glibc-recycled"])
    assert glibc_recycled[full[0].index("restarts")] == "12"
    plain = text_of(material(tmp_path / "plain").table("spec"))
    assert "no per-request worker recycling, which would hide fragmentation" in plain


def test_recycling_is_read_per_allocator_from_the_resolved_spec():
    spec = {
        "allocators": [
            "glibc",
            {"name": "glibc-r", "base": "glibc", "service": {"max_requests": 50}},
            {"name": "glibc-off", "base": "glibc", "service": {"max_requests": None}},
        ],
        "aa_pair": "glibc-r",
        "service": {"max_requests": None, "max_requests_jitter": 5},
    }
    how = recycling_of(spec)
    assert how["glibc"] is None and how["glibc-off"] is None
    assert how["glibc-r"] is not None and how["glibc-r"].text() == "every 50-55 requests"
    assert how["glibc-r-again"] == how["glibc-r"]


def test_change_follows_the_noise_rule_of_the_rankings():
    from bench.report.sections.recycling import change
    from bench.report.stats import summarize
    from bench.report.units import fmt_mb

    def mb(*values: float):
        return summarize(v * 1e6 for v in values)

    # three repeats each: overlapping 95% intervals tie, however far apart the means
    assert change(mb(200, 260, 320), mb(280, 300, 320), fmt_mb).direction == 0
    assert change(mb(200, 201, 202), mb(300, 301, 302), fmt_mb).direction == -1
    # one repeat each: within 5% ties, beyond does not
    assert change(mb(300), mb(310), fmt_mb).text == "300 MB against 310 MB without, tied"
    assert change(mb(330), mb(300), fmt_mb).text == "330 MB against 300 MB without, 10% higher"
    assert change(None, mb(300), fmt_mb).text == "not measured"


def test_a_recycled_workers_live_set_leaves_the_payload_when_it_is_replaced(tmp_path: Path):
    from bench.report.live import live_payload
    from bench.report.runfolders import Run, RunRef

    manifest = {
        "allocators": [
            {
                "name": "a",
                "live_set": [
                    {
                        "repeat": 0,
                        "at": "ready",
                        "t_s": 1.0,
                        "workers": [{"pid": 10, "live_bytes": 100}, {"pid": 11, "live_bytes": 50}],
                    }
                ],
                "phases": {"service": [{"repeat": 0, "phase": "idle", "start_s": 8, "end_s": 9}]},
            }
        ]
    }
    run = Run(
        ref=RunRef("s", "r", tmp_path, "complete", None, None),
        manifest=manifest,
        memory=[],
        control=[],
        summary=[],
        answers={("a", 0): [(2.0, 10, 300), (3.0, 11, 60), (5.5, 10, 320), (7.0, 12, 5)]},
        restarts=[{"allocator": "a", "repeat": 0, "old_pid": 10, "new_pid": 12, "replaced_s": 6.0}],
    )
    line = live_payload(run, ["a"]).lines["a"]
    assert line == [
        (1.0, 150.0),
        (2.0, 350.0),
        (3.0, 360.0),
        (5.5, 380.0),
        (6.0, 60.0),  # worker 10 is gone, and its 320 bytes with it
        (7.0, 65.0),  # its replacement starts afresh
        (9.0, 65.0),
    ]


def test_variants_that_only_recycle_are_left_out_of_the_knobs_section(tmp_path: Path):
    from bench.report.sections.knobs.words import NO_VARIANTS

    m = _recycling_run(tmp_path)
    assert m.say("knobs") == NO_VARIANTS
    assert "recycled" not in m.table("knobs")
