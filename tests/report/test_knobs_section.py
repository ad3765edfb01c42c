"""Variants: left out of the rankings, kept beside their base in tables and charts, and held
against that base alone in "What the knobs did", with verdicts by the noise rule of
`allocstudy compare` and the runner's read-back of each setting.

The synthetic runs are written with the real table writer and read back by the real loader,
so every number here goes through the path the site takes. Service repeats sit at 0.99, 1.00
and 1.01 of the nominal value: with three repeats the 95% interval reaches about 2.5% either
side, so values 12% apart do not overlap and values 1% apart do.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pyarrow.feather as feather
from material import Material, cells, material, text_of
from synthetic_run import DEFAULT_ALLOCS, REPO, Alloc, knob

from bench.report.aggregate import AllocatorInfo, Results, knobs_of
from bench.report.charts.figure import VARIANT_MARK, Names
from bench.report.sections.knobs.model import knob_state, variant_reports
from bench.report.sections.knobs.words import NO_VARIANTS
from bench.report.stats import ties
from bench.report.units import fmt_mb, fmt_ms

TEMPLATE = (REPO / "docs" / "_article.md").read_text(encoding="utf-8")

#: jemalloc with its decay at zero: settled 12% below jemalloc (250 MB), peak and p99 as its
#: base's within 1%; the leanest settled of the whole run, so a ranking would name it first.
DECAY0 = Alloc(
    "jemalloc-decay0",
    52,
    357,
    220,
    1.2,
    4.0,
    35.0,
    175,
    base="jemalloc",
    env=(("MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0"),),
    knobs=(knob("opt.dirty_decay_ms", "0"), knob("opt.muzzy_decay_ms", "0")),
)
#: glibc trimming at once: settled far below glibc (410 MB), its trim threshold unreadable.
TRIM = Alloc(
    "glibc-trim",
    48,
    420,
    100,
    1.3,
    4.1,
    12.0,
    190,
    base="glibc",
    env=(("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0"),),
    knobs=(
        knob(
            "glibc.malloc.trim_threshold",
            "0",
            "unverifiable",
            how=None,
            why="glibc offers no call that reads a tunable back",
        ),
    ),
)
#: A variant whose setting read back otherwise, so the runner failed it.
MISMATCH = Alloc(
    "mimalloc-v3-purge0",
    base="mimalloc-v3",
    status="failed",
    reason="its setting did not take: read back otherwise",
    env=(("MIMALLOC_PURGE_DELAY", "0"),),
    knobs=(knob("purge_delay", "0", "mismatch", read_back="10", how="mi_option_get"),),
)
VARIANTS = (DECAY0, TRIM, MISMATCH)


def _with_variants(tmp_path: Path, variants=VARIANTS, **kw) -> Material:
    return material(tmp_path, variants=variants, **kw)


def _rows(m: Material) -> dict[str, dict[str, list[str]]]:
    """The knobs table as {variant: {column: the cell's lines}}."""
    table = m.table("knobs")
    head = cells(table)[0]
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        raw = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        lines = [
            [html.unescape(re.sub(r"<[^>]+>", "", part)).strip() for part in cell.split("<br>")]
            for cell in raw
        ]
        out[lines[0][0].split(" (")[0]] = dict(zip(head, lines, strict=True))
    return out


def _titles(m: Material) -> dict[str, list[str]]:
    """Each row's verdict cells' titles: the rule that decided, in compare's words."""
    out = {}
    for row in re.findall(r"<tr>(.*?)</tr>", m.table("knobs"), re.S)[1:]:
        name = re.sub(r"<[^>]+>", "", re.search(r"<th[^>]*>(.*?)</th>", row).group(1))  # type: ignore[union-attr]
        out[name.split(" (")[0]] = re.findall(r'<span title="([^"]*)"', row)
    return out


# --- rankings are stock-only ----------------------------------------------------------------


def test_rankings_leave_variants_out_even_the_leanest(tmp_path: Path):
    m = _with_variants(tmp_path)
    res = m.view.results
    assert {a.name for a in res.ranked().allocators}.isdisjoint({v.name for v in VARIANTS})
    for name in ("headline", "settled_ranking", "peak_ranking", "shed_ranking", "guidance"):
        text = m.say(name)
        for v in VARIANTS:
            assert v.name not in text, (name, v.name)
    # glibc-trim settled lowest of all (100 MB), yet the stock leader leads
    assert "mimalloc-v3 is the leanest at 150 MB" in m.say("headline")
    assert m.values["allocators.count"] == "6"  # the stock allocators the spec names
    assert m.values["variants.count"] == "3" and m.values["variants.measured"] == "2"


def test_a_failed_variant_is_named_where_the_unmeasured_are(tmp_path: Path):
    m = _with_variants(tmp_path)
    text = m.say("not_measured")
    assert "The variant mimalloc-v3-purge0 was not measured" in text
    assert "#what-the-knobs-did" in text


# --- tables and charts keep variants, beside their base --------------------------------------


def test_headline_table_lists_each_variant_after_its_base_labelled(tmp_path: Path):
    m = _with_variants(tmp_path)
    names = [r[0] for r in cells(m.table("headline"))[1:]]
    assert names.index("jemalloc-decay0 (variant of jemalloc)") == names.index("jemalloc") + 1
    assert names.index("glibc-trim (variant of glibc)") == names.index("glibc") + 1
    assert "mimalloc-v3-purge0 (variant of mimalloc-v3)" in names  # failed, with its reason


def test_grouped_keeps_families_together_in_the_given_order():
    infos = (
        AllocatorInfo("a", "ok", None),
        AllocatorInfo("b", "ok", None),
        AllocatorInfo("b-again", "ok", None, same_as="b"),
        AllocatorInfo("b-tuned", "ok", None, base="b"),
        AllocatorInfo("c-tuned", "ok", None, base="c"),  # its base is not in the order
    )
    res = Results(infos, {}, {}, (), 1)
    order = ["b-tuned", "a", "b-again", "c-tuned", "b"]
    assert res.grouped(order) == ["a", "b-again", "b", "b-tuned", "c-tuned"]
    assert res.grouped([]) == []


def test_variants_share_their_bases_colour_and_are_labelled_in_every_chart(tmp_path: Path):
    m = _with_variants(tmp_path, aa_pair="tcmalloc")
    names = Names.of(m.view.results)
    assert names.palette["jemalloc-decay0"] == names.palette["jemalloc"]
    assert names.palette["glibc-trim"] == names.palette["glibc"]
    stock = [names.palette[n] for n in ("glibc", "jemalloc", "tcmalloc", "mimalloc-v3")]
    assert len(set(stock)) == 4  # no palette slot went to a variant
    assert names.label("jemalloc-decay0") == f"jemalloc-decay0{VARIANT_MARK}"
    assert names.label("jemalloc") == "jemalloc"
    for chart in ("staircase", "peak_settled", "dumbbell", "throughput", "latency"):
        html = m.chart(chart)
        assert f">jemalloc-decay0{VARIANT_MARK}</text>" in html, chart  # axis or legend
        assert "jemalloc-decay0 (variant of jemalloc)" in html, chart  # its data table
        assert "with a setting changed" in text_of(html), chart  # the caption says so


def test_a_variants_bars_are_lighter_and_its_line_dotted(tmp_path: Path):
    m = _with_variants(tmp_path)
    colour = Names.of(m.view.results).palette["jemalloc"]
    bars = re.findall(rf'<path [^>]*fill="{colour}"[^>]*>', m.chart("peak_settled"))
    assert any('fill-opacity="0.45"' in b for b in bars)  # the variant's
    assert any('fill-opacity="0.45"' not in b for b in bars)  # jemalloc's own
    staircase = m.chart("staircase")
    assert re.search(rf'<path [^>]*stroke="{colour}"[^>]*stroke-dasharray="1.5,2.5"', staircase)


def test_a_run_without_variants_labels_nothing_as_a_variant(tmp_path: Path):
    m = material(tmp_path)
    for chart in ("staircase", "peak_settled", "dumbbell", "throughput", "latency"):
        assert "variant" not in m.chart(chart), chart
    assert all("variant" not in r[0] for r in cells(m.table("headline")))


# --- the knobs table ------------------------------------------------------------------------


def test_knobs_table_has_a_row_per_variant_with_the_arrow_tables_means(tmp_path: Path):
    m = _with_variants(tmp_path, repeats=3)
    rows = _rows(m)
    assert list(rows) == ["glibc-trim", "jemalloc-decay0", "mimalloc-v3-purge0"]
    assert list(rows["glibc-trim"]) == ["variant", "peak MB", "settled MB", "p99 ms", "control M/s"]
    summary = feather.read_table(m.view.run.files["summary"]).to_pylist()

    def mean(allocator: str, column: str) -> float:
        xs = [
            r[column]
            for r in summary
            if r["allocator"] == allocator and r["experiment"] == "service"
        ]
        return sum(xs) / len(xs)

    def number(fmt, x: float) -> str:
        return fmt(x).split(" ")[0]  # the unit is the column's

    for variant, base in (("jemalloc-decay0", "jemalloc"), ("glibc-trim", "glibc")):
        for column, key, fmt in (
            ("settled MB", "settled_anon_bytes", fmt_mb),
            ("peak MB", "peak_anon_bytes", fmt_mb),
            ("p99 ms", "p99_ms", fmt_ms),
        ):
            both = f"{number(fmt, mean(base, key))} → {number(fmt, mean(variant, key))}"
            assert rows[variant][column][0] == both, (variant, column)
    control = feather.read_table(m.view.run.files["control"]).to_pylist()
    speed = [r["allocs_per_s"] for r in control if r["allocator"] == "jemalloc-decay0"]
    assert rows["jemalloc-decay0"]["control M/s"][0].endswith(f"→ {sum(speed) / 3e6:.1f}")
    assert rows["jemalloc-decay0"]["variant"][:2] == [
        "jemalloc-decay0 (variant of jemalloc)",
        "MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0",
    ]


def test_verdicts_with_repeats_follow_the_intervals(tmp_path: Path):
    m = _with_variants(tmp_path, repeats=3)
    row = _rows(m)["jemalloc-decay0"]
    assert row["settled MB"][1:] == ["-12.0%", "changed"]
    assert row["peak MB"][1:] == ["-0.8%", "unchanged"]
    titles = _titles(m)["jemalloc-decay0"]
    assert any(t.startswith("95% intervals apart (jemalloc ±") for t in titles)
    assert any(t.startswith("95% intervals overlap") for t in titles)


def test_verdicts_with_one_repeat_follow_the_aa_floor(tmp_path: Path):
    # the A/A pair drifts 1%: jemalloc-decay0's peak, 0.8% below jemalloc's, is within it
    m = _with_variants(tmp_path, aa_pair="tcmalloc", aa_drift=0.01)
    row = _rows(m)["jemalloc-decay0"]
    assert row["peak MB"][2] == "unchanged" and row["settled MB"][2] == "changed"
    titles = _titles(m)["jemalloc-decay0"]
    assert "within A/A floor 1.0%" in titles and "beyond A/A floor 1.0%" in titles


def test_verdicts_with_one_repeat_and_no_pair_follow_the_stated_5_percent(tmp_path: Path):
    near = Alloc("jemalloc-near", 52, 360 * 1.04, 250 * 1.06, base="jemalloc")
    m = _with_variants(tmp_path, variants=(near,))
    row = _rows(m)["jemalloc-near"]
    assert row["peak MB"][1:] == ["+4.0%", "unchanged"]
    assert row["settled MB"][1:] == ["+6.0%", "changed"]
    titles = _titles(m)["jemalloc-near"]
    assert "within stated 5%" in titles and "beyond stated 5%" in titles
    assert "stated 5% of the larger value" in text_of(m.table("knobs"))  # the caption's rule


def test_every_verdict_is_compares_tie_rule(tmp_path: Path):
    m = _with_variants(tmp_path, aa_pair="tcmalloc")
    reports = variant_reports(m.view.results)
    decided = [c for r in reports for c in r.changes if c.a is not None and c.b is not None]
    assert decided
    for c in decided:
        assert c.changed is (not ties(c.a, c.b))  # type: ignore[arg-type]
        assert c.verdict in ("changed", "unchanged")


def test_a_failed_variant_is_listed_with_its_reason(tmp_path: Path):
    m = _with_variants(tmp_path)
    row = _rows(m)["mimalloc-v3-purge0"]
    assert row["settled MB"] == row["peak MB"] == ["not measured"]
    assert row["variant"] == [
        "mimalloc-v3-purge0 (variant of mimalloc-v3)",
        "MIMALLOC_PURGE_DELAY=0",
        "failed: its setting did not take: read back otherwise; mismatch: purge_delay asked 0, "
        "read back 10 (mi_option_get)",
    ]
    said = m.say("knobs")
    assert "mimalloc-v3-purge0 failed: its setting did not take: read back otherwise" in said
    assert "purge_delay asked 0, read back 10" in said


def test_an_unverifiable_knob_says_so_with_why(tmp_path: Path):
    m = _with_variants(tmp_path)
    cell = _rows(m)["glibc-trim"]["variant"][-1]
    assert cell == "unverifiable: glibc offers no call that reads a tunable back"
    said = m.say("knobs_read_back")
    assert "The setting of glibc-trim could not be checked (" in said
    assert "glibc offers no call that reads a tunable back), so whether it took effect" in said
    assert "The setting of jemalloc-decay0 read back as asked" in said
    assert _rows(m)["jemalloc-decay0"]["variant"][-1] == "read back as asked in 5 processes"
    how = re.search(r'<span title="([^"]*)">read back as asked', m.table("knobs"))
    assert how and how.group(1) == "opt.dirty_decay_ms: mallctl; opt.muzzy_decay_ms: mallctl"
    caption = text_of(m.table("knobs"))
    assert "The settings were not checked in the C++ control: it runs the same library" in caption
    assert "control M/s: C++ control throughput, million allocations per second." in caption


def test_a_run_without_read_back_records_says_so(tmp_path: Path):
    bare = Alloc("jemalloc-bare", 52, 360, 200, base="jemalloc", knobs=None)
    m = _with_variants(tmp_path, variants=(bare,))
    assert _rows(m)["jemalloc-bare"]["variant"][-1] == "no read-back recorded"
    said = m.say("knobs_read_back")
    assert "The run recorded no read-back of the setting of jemalloc-bare" in said


# --- the sentence ---------------------------------------------------------------------------


def test_one_variant_gets_a_sentence_naming_what_moved_and_what_did_not(tmp_path: Path):
    m = _with_variants(tmp_path, variants=(DECAY0,), repeats=3)
    assert m.say("knobs") == (
        "Against jemalloc, jemalloc-decay0 settled 12% lower, beyond the noise; its peak, p99 "
        "latency and C++ control throughput did not move."
    )


def test_several_variants_are_summarised_measure_by_measure(tmp_path: Path):
    worse = Alloc("jemalloc-worse", 52, 360, 300, 1.2, 6.0, 35.0, 175, base="jemalloc")
    m = _with_variants(tmp_path, variants=(*VARIANTS, worse), repeats=3)
    said = m.say("knobs")
    assert said.startswith(
        "Against their own stock allocators, settled memory fell beyond the noise with "
        "glibc-trim (76%) and jemalloc-decay0 (12%), and rose with jemalloc-worse (20%). "
        "The p99 latency rose with jemalloc-worse (50%). "
        "No variant moved its peak or C++ control throughput beyond the noise."
    )
    assert said.endswith(
        "mimalloc-v3-purge0 failed: its setting did not take: read back otherwise (its setting "
        "purge_delay asked 0, read back 10 (mi_option_get))."
    )


def test_a_variant_that_moved_nothing_says_so(tmp_path: Path):
    same = Alloc("jemalloc-same", 52, 360, 250, 1.2, 4.0, 35.0, 175, base="jemalloc")
    m = _with_variants(tmp_path, variants=(same,))
    assert m.say("knobs").startswith(
        "Against jemalloc, jemalloc-same's peak, settled memory, p99 latency and C++ control "
        "throughput did not move beyond the noise."
    )


# --- a run without variants -----------------------------------------------------------------


def test_a_run_without_variants_shows_no_knobs_table_and_says_why(tmp_path: Path):
    m = material(tmp_path)
    assert m.table("knobs") == ""
    assert m.say("knobs") == NO_VARIANTS
    page = m.page(TEMPLATE)
    # the page leaves the section off and names the spec that makes the measurement
    assert "What the knobs did" not in page and "This run had no variants" not in page
    assert "allocstudy run specs/knobs.yaml" in page.split("Try next", 1)[1]
    assert m.say("knobs_read_back") == ""
    assert "knobs-table" not in m.view.tables("")["knobs"]()


def test_the_article_renders_with_variants(tmp_path: Path):
    m = _with_variants(tmp_path, aa_pair="tcmalloc")
    page = m.page(TEMPLATE)
    section = page.split("## What the knobs did", 1)[1].split("## The full data", 1)[0]
    assert (
        "settled memory fell beyond the noise with glibc-trim (76%) and jemalloc-decay0" in section
    )
    assert "The setting of jemalloc-decay0 read back as asked" in section
    assert "jemalloc-decay0 (variant of jemalloc)" in section  # the table


# --- the manifest's read-back records -------------------------------------------------------


def test_knob_records_are_read_defensively():
    assert knobs_of({}) == () and knobs_of({"knobs": None}) == ()
    assert knobs_of({"knobs": "verified"}) == ()
    (k,) = knobs_of(
        {"knobs": [{"setting": "x", "asked": 0, "read_back": 0, "state": "verified"}, 3, {}]}
    )
    assert (k.setting, k.asked, k.read_back, k.state) == ("x", "0", "0", "verified")
    assert knob_state(()) == "not recorded"
    states = knobs_of(
        {
            "knobs": [
                {"setting": "a", "state": "verified"},
                {"setting": "b", "state": "unverifiable", "reason": "no reader"},
            ]
        }
    )
    assert knob_state(states) == "unverifiable" and states[1].why == "no reader"


def test_stock_allocators_keep_their_order_without_variants(tmp_path: Path):
    m = material(tmp_path)
    head = [r[0] for r in cells(m.table("headline"))[1:]]
    assert head[:4] == ["mimalloc-v3", "jemalloc", "tcmalloc", "glibc"]
    assert len(DEFAULT_ALLOCS) == len(head)


def test_a_variant_whose_base_is_not_in_the_run_says_there_is_nothing_to_hold_it_against(
    tmp_path: Path,
):
    alone = Alloc("jemalloc-decay0", 52, 350, 220, base="jemalloc")
    m = material(tmp_path, allocs=(Alloc("glibc"),), variants=(alone,))
    assert m.say("knobs") == (
        "jemalloc-decay0 ran, but its base jemalloc was not measured (not in the run), so "
        "there is nothing to hold it against."
    )
    assert "jemalloc-decay0" not in m.say("headline")
    assert _rows(m)["jemalloc-decay0"]["settled MB"] == ["220; jemalloc not measured"]


def test_a_change_below_a_tenth_of_a_percent_shows_its_digits_beside_the_floors(
    tmp_path: Path,
):
    # one repeat, an A/A pair 0.03% apart: the floor is still 1% (one pair can land close by
    # chance), so 0.05% is unchanged, and the cell says -0.05%, not a bare "-0.0%"
    hair = Alloc("jemalloc-hair", 52, 360, 250 * 0.9995, 1.2, 4.0, 35.0, 175, base="jemalloc")
    m = _with_variants(tmp_path, variants=(hair,), aa_pair="tcmalloc", aa_drift=0.0003)
    assert _rows(m)["jemalloc-hair"]["settled MB"][1:] == ["-0.05%", "unchanged"]
    caption = text_of(m.table("knobs"))
    assert "(peak 0.03%, settled 0.03%, p99 0.00%, control" in caption
