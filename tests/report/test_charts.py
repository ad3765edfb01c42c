"""Charts: themable, accessible, self-contained SVG inside a figure with its data table; each
headline value with its 95% interval when the run has repeats; the A/A duplicate drawn apart;
value axes whose labels never collide."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from material import charts
from synthetic_run import write_run

from bench.report.aggregate import Results, aggregate
from bench.report.charts import figure, throughput
from bench.report.charts.figure import AA_MARK, INTERVAL_LAYER, MAX_ROWS, Names, repeats_phrase
from bench.report.runfolders import Run, find_studies, load_run
from bench.report.sections.latency import latency_chart
from bench.report.sections.staircase import PLOT_WIDTH
from bench.report.stats import Sample
from bench.report.svg import INK
from bench.report.units import MB
from bench.results.tables import read_table, to_table, write_table

#: Width of one character of a 12 px axis label in the widest common sans-serif (DejaVu
#: Sans digits are 0.64 em), so the overlap check holds in the reader's browser too.
CHAR_PX = 0.64 * 12


def loaded(results: Path) -> tuple[Run, Results]:
    (study,) = find_studies(results)
    run = load_run(study.current)
    return run, aggregate(run)


def rendered(results: Path) -> dict[str, str]:
    run, res = loaded(results)
    return {k: f() for k, f in charts(run, res).items()}


def aa_run(results: Path, repeats: int) -> Path:
    """A synthetic run with an A/A pair: glibc measured a second time, as glibc-again."""
    write_run(results, repeats=repeats, aa_pair="glibc")
    return results


@pytest.fixture
def repeated(tmp_path: Path) -> Path:
    return aa_run(tmp_path / "results", repeats=3)


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict]:
    """The Vega-Lite spec of every chart rendered while the test runs, by SVG prefix."""
    seen: dict[str, dict] = {}
    configure = figure.configure

    def recording(chart: Any) -> dict:
        spec = configure(chart)
        seen[f"chart{len(seen)}"] = spec
        return spec

    monkeypatch.setattr(figure, "configure", recording)
    return seen


# --- reading the rendered SVG ---------------------------------------------------------------

_TEXT = re.compile(
    r'<text[^>]*?text-anchor="(\w+)"[^>]*?transform="translate\(([-\d.e]+),([-\d.e]+)\)"'
    r"([^>]*)>([^<]*)</text>"
)


def svg_of(html: str) -> str:
    return html[html.index("<svg") : html.index("</svg>")]


def x_axis_labels(svg: str) -> list[tuple[float, str, str]]:
    """(x, anchor, text) of the visible tick labels of the chart's quantitative x axis: the
    label group whose labels share one height (a y axis's share one x)."""
    for group in re.findall(r'role-axis-label"[^>]*>(.*?)</g>', svg):
        labels = [
            (float(x), anchor, text, float(y))
            for anchor, x, y, rest, text in _TEXT.findall(group)
            if 'opacity="0"' not in rest
        ]
        if len(labels) > 1 and len({y for *_, y in labels}) == 1:
            return [(x, anchor, text) for x, anchor, text, _ in labels]
    raise AssertionError("no horizontal axis in the SVG")


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("\u2212", "-"))


def to_value(svg: str) -> Callable[[float], float]:
    """Pixels of the plot to data values, from the x axis's first and last tick labels."""
    ticks = x_axis_labels(svg)
    (x0, _, t0), (x1, _, t1) = ticks[0], ticks[-1]
    v0, v1 = _number(t0), _number(t1)
    return lambda px: v0 + (px - x0) * (v1 - v0) / (x1 - x0)


def drawn_whiskers(svg: str) -> list[tuple[float, float]]:
    """(low, high) of every interval whisker in the SVG, in data units."""
    rules = re.findall(rf'{INTERVAL_LAYER}_layer_\d+_marks"[^>]*>((?:<line[^>]*/>)+)</g>', svg)
    value = to_value(svg)
    out = []
    for group in rules:
        for x, x2 in re.findall(r'translate\(([-\d.e]+),[-\d.e]+\)" x2="([-\d.e]+)"', group):
            if float(x2):  # the rule, not a cap
                out.append((value(float(x)), value(float(x) + float(x2))))
    return out


def assert_same_intervals(
    drawn: list[tuple[float, float]], expected: list[tuple[float, float]], tol: float
) -> None:
    assert len(drawn) == len(expected)
    for lo, hi in expected:
        assert any(abs(a - lo) <= tol and abs(b - hi) <= tol for a, b in drawn), (lo, hi, drawn)


def interval(s: Sample | None, scale: float = 1.0) -> tuple[float, float]:
    assert s is not None and s.interval is not None
    return (s.interval[0] / scale, s.interval[1] / scale)


def flat(pairs: list[tuple[float, float]]) -> list[float]:
    return [x for pair in sorted(pairs) for x in pair]


def interval_rows(spec: dict) -> list[dict[str, Any]]:
    """The data rows of the spec's interval layer."""
    (layer,) = [x for x in spec.get("layer", []) if x.get("name") == INTERVAL_LAYER]
    return layer["data"]["values"]


# --- every chart ------------------------------------------------------------------------------


def test_every_chart_is_a_labelled_themable_figure(results: Path):
    for name, html in rendered(results).items():
        assert html.startswith("<figure"), name
        assert "<figcaption>" in html and '<details class="as-data">' in html and "<table" in html
        (root,) = re.findall(r"<svg\b[^>]*>", html)
        assert 'role="img"' in root and 'aria-label="' in root
        assert "currentColor" in html, name
        assert INK.lower() not in html.lower(), name
        assert "http://" not in html and "https://" not in html, name
        assert "\n\n" not in html  # one HTML block for Markdown


def test_ids_are_unique_across_charts(results: Path):
    ids = [i for html in rendered(results).values() for i in re.findall(r'\bid="([^"]+)"', html)]
    assert len(ids) == len(set(ids))


def test_only_the_root_carries_aria(results: Path):
    html = rendered(results)["staircase"]
    assert html.count("role=") == 1


def test_legend_lists_leanest_settled_first(results: Path):
    html = rendered(results)["staircase"]
    legend = [n for n in ("mimalloc-v3", "jemalloc", "tcmalloc", "glibc")]
    positions = [html.index(f">{n}</text>") for n in legend]
    assert positions == sorted(positions)


def test_long_series_are_thinned_below_altairs_limit(tmp_path: Path):
    r = tmp_path / "results"
    write_run(r, interval=0.1, load_s=600, idle_s=120, requests_per_alloc=10)
    html = rendered(r)["staircase"]
    (samples,) = re.findall(r"<td[^>]*>(\d+)</td></tr></tbody>", html)[-1:]
    assert int(samples) > MAX_ROWS // 4  # the data table still counts every sample
    assert len(html) < 200_000


def keep_summary(results: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Rewrite the run's summary table with only the rows `keep` accepts."""
    (study,) = find_studies(results)
    run = study.current.path
    rows = [x for x in read_table(run / "summary.arrow", "summary").to_pylist() if keep(x)]
    write_table(run / "summary.arrow", "summary", to_table("summary", rows))


def keep_first_repeat(results: Path) -> None:
    """One repeat of everything (the synthetic control always runs three)."""
    keep_summary(results, lambda x: x["repeat"] == 0)


def test_no_data_gives_a_note_not_a_broken_chart(tmp_path: Path):
    r = tmp_path / "results"
    run = write_run(r)
    (run / "control.arrow").unlink()
    keep_summary(r, lambda x: x["experiment"] == "service")
    out = rendered(r)
    assert out["throughput"].startswith('<p class="as-nochart"')


# --- the 95% interval ---------------------------------------------------------------------------


def test_with_repeats_every_headline_chart_draws_each_values_95_interval(
    repeated: Path, specs: dict[str, dict]
):
    run, res = loaded(repeated)
    made = charts(run, res)
    svc = res.service

    html = made["peak_settled"]()
    expected = [interval(s, MB) for r in svc.values() for s in (r.peak, r.settled)]
    got = [(w["lo"], w["hi"]) for w in interval_rows(list(specs.values())[-1])]
    assert flat(got) == pytest.approx(flat(expected))
    assert_same_intervals(drawn_whiskers(svg_of(html)), expected, tol=2.0)  # MB, ~1.5 px

    html = made["throughput"]()
    expected = [interval(c.allocs_per_s, 1e6) for c in res.control.values()]
    got = [(w["lo"], w["hi"]) for w in interval_rows(list(specs.values())[-1])]
    assert flat(got) == pytest.approx(flat(expected))
    assert_same_intervals(drawn_whiskers(svg_of(html)), expected, tol=0.2)  # million/s

    html = made["latency"]()
    expected = [interval(s) for r in svc.values() for s in (r.p50, r.p95, r.p99)]
    got = [(w["lo"], w["hi"]) for w in interval_rows(list(specs.values())[-1])]
    assert flat(got) == pytest.approx(flat(expected))
    assert_same_intervals(drawn_whiskers(svg_of(html)), expected, tol=0.02)  # ms

    html = made["dumbbell"]()
    expected = [interval(r.settled, MB) for r in svc.values()] + [
        interval(c.settled, MB) for c in res.control.values()
    ]
    assert len(drawn_whiskers(svg_of(html))) == len(expected)


def test_with_repeats_captions_and_tables_give_the_mean_and_its_interval(repeated: Path):
    out = rendered(repeated)
    for name in ("peak_settled", "throughput", "latency", "dumbbell"):
        caption = re.search(r"<figcaption>(.*?)</figcaption>", out[name]).group(1)
        assert "mean of 3 repeats, the whiskers its 95% interval" in caption, name
        assert "median" not in caption and "slowest to the fastest" not in caption, name
        assert "95% interval" in out[name].split("<details")[1], name
    run, res = loaded(repeated)
    lo, hi = res.control["glibc"].allocs_per_s.interval  # type: ignore[union-attr]
    assert f"{lo / 1e6:.1f} million/s to {hi / 1e6:.1f} million/s" in out["throughput"]


def test_a_single_repeat_draws_no_whiskers_and_says_so(tmp_path: Path, specs: dict[str, dict]):
    results = aa_run(tmp_path / "results", repeats=1)
    keep_first_repeat(results)
    out = rendered(results)
    for name in ("peak_settled", "throughput", "latency", "dumbbell"):
        assert f"{INTERVAL_LAYER}_layer" not in out[name], name
        assert "95% interval" not in out[name], name
        caption = re.search(r"<figcaption>(.*?)</figcaption>", out[name]).group(1)
        assert "a single repeat, no interval" in caption, name
    for spec in specs.values():
        assert all(x.get("name") != INTERVAL_LAYER for x in spec.get("layer", []))


def test_disturbed_repeats_are_counted_in_the_caption():
    s = Sample(values=(1.0, 1.1), center=1.05, spread=0.1)
    text = repeats_phrase([((s, s), 1), ((s, s), 0)])
    assert text.startswith("mean of 3 repeats, the whiskers its 95% interval")
    assert "1 disturbed repeat left out of the means" in text  # once per allocator
    one = Sample(values=(1.0,), center=1.0, spread=0.0)
    assert repeats_phrase([((one, None), 0)]) == "a single repeat, no interval"
    assert "single clean repeat has none" in repeats_phrase([((s,), 0), ((one,), 2)])
    wild = Sample(values=(1.0, 9.0, 2.0), center=4.0, spread=8.0)
    assert "below zero is cut at the axis" in repeats_phrase([((wild,), 0)])


# --- the A/A duplicate ----------------------------------------------------------------------------


def test_the_aa_duplicate_has_its_pairs_colour_its_own_legend_entry_and_a_dashed_line(
    repeated: Path,
):
    run, res = loaded(repeated)
    names = Names.of(res)
    assert names.again == {"glibc-again": "glibc"}
    assert names.palette["glibc-again"] == names.palette["glibc"]
    others = [c for n, c in names.palette.items() if n not in ("glibc", "glibc-again")]
    assert names.palette["glibc"] not in others
    html = rendered(repeated)["staircase"]
    svg = svg_of(html)
    assert f">glibc-again{AA_MARK}</text>" in svg  # its legend entry says what it is
    assert ">glibc</text>" in svg
    colour = names.palette["glibc-again"]
    dashed = re.findall(rf'<path [^>]*stroke="{colour}"[^>]*stroke-dasharray="4,2"', svg)
    assert dashed, "the duplicate's line (and its legend symbol) is dashed"
    same = re.findall(rf'<path [^>]*stroke="{colour}"[^>]*>', svg)
    solid = [p for p in same if 'stroke-dasharray="4,2"' not in p]
    assert solid, "glibc itself, in the same colour, stays solid"
    assert "glibc-again (A/A of glibc)" in html  # the data table
    assert "glibc-again (A/A), dashed in its pair's colour, is glibc run a second time" in html


def test_the_aa_duplicate_is_labelled_and_hollow_in_every_chart(repeated: Path):
    run, res = loaded(repeated)
    colour = Names.of(res).palette["glibc-again"]
    for name, html in rendered(repeated).items():
        svg = svg_of(html)
        assert f">glibc-again{AA_MARK}</text>" in svg, name
        assert "glibc-again (A/A of glibc)" in html, name
    out = rendered(repeated)
    for name in ("peak_settled", "throughput"):
        # the pair shares a colour: glibc's bars are filled, the duplicate's hollow
        bars = re.findall(rf'<path [^>]*fill="{colour}"[^>]*>', svg_of(out[name]))
        hollow = [b for b in bars if 'fill-opacity="0.15"' in b]
        assert hollow and len(hollow) < len(bars), name
    latency = svg_of(out["latency"])
    outlined = re.findall(rf'<path [^>]*stroke="{colour}"[^>]*>', latency)
    assert outlined and all(f'fill="{colour}"' not in p for p in outlined)  # the duplicate's
    assert re.search(rf'<path [^>]*fill="{colour}"', latency)  # glibc's own, filled


def test_without_a_pair_nothing_is_labelled_aa(results: Path):
    for html in rendered(results).values():
        assert "A/A" not in html


# --- layout -------------------------------------------------------------------------------------


def test_staircase_fills_the_column_and_its_phase_labels_sit_above_the_lines(repeated: Path):
    svg = svg_of(rendered(repeated)["staircase"])
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
    assert width >= 700 and PLOT_WIDTH >= 600  # the stylesheet scales it to the column
    phase_texts = [
        (float(y), text)
        for _, _, y, _, text in _TEXT.findall(svg)
        if text in ("start-up", "warm-up", "load", "idle")
    ]
    assert {t for _, t in phase_texts} == {"start-up", "warm-up", "load", "idle"}
    assert all(y < 0 for y, _ in phase_texts)  # above the plot's top edge: never on the data


def _scaled(s: Sample | None, f: float) -> Sample | None:
    if s is None:
        return None
    return replace(
        s, values=tuple(v * f for v in s.values), center=s.center * f, spread=s.spread * f
    )


@pytest.mark.parametrize(
    "factor", [1e-4, 3e-3, 0.012, 0.02, 0.05, 0.07, 0.3, 1.0, 2.2, 4.0, 33.0, 900.0]
)
def test_throughput_axis_labels_never_overlap(repeated: Path, factor: float):
    run, res = loaded(repeated)
    res = replace(
        res,
        control={
            n: replace(c, allocs_per_s=_scaled(c.allocs_per_s, factor))
            for n, c in res.control.items()
        },
    )
    html = throughput.throughput(res, Names.of(res), "caption")
    labels = x_axis_labels(svg_of(html))
    assert len(labels) >= 2
    boxes = []
    for x, anchor, text in labels:
        w = len(text) * CHAR_PX
        left = {"start": x, "end": x - w}.get(anchor, x - w / 2)
        boxes.append((left, left + w, text))
    for (_, right, a), (left, _, b) in zip(boxes, boxes[1:], strict=False):
        assert left - right >= 2, f"{a!r} and {b!r} touch at factor {factor}"


def test_value_axes_ask_vega_to_drop_overlapping_labels(repeated: Path, specs: dict[str, dict]):
    rendered(repeated)
    axes = [
        layer["encoding"]["x"]["axis"]
        for spec in specs.values()
        for layer in spec.get("layer", [])
        if isinstance(layer.get("encoding", {}).get("x", {}).get("axis"), dict)
    ]
    assert len(axes) >= 5
    assert all(a.get("labelOverlap") == "greedy" for a in axes)


def test_an_interval_reaching_below_zero_is_cut_at_the_axis_not_drawn_as_negative(
    repeated: Path, specs: dict[str, dict]
):
    run, res = loaded(repeated)
    wild = Sample(values=(1.0, 9.0, 2.0), center=4.0, spread=8.0)
    assert wild.interval is not None and wild.interval[0] < 0
    svc = {n: replace(r, p99=wild) for n, r in res.service.items()}
    html = latency_chart(replace(res, service=svc), Names.of(res), "caption")
    assert all(_number(t) >= 0 for _, _, t in x_axis_labels(svg_of(html)))
    (spec,) = specs.values()
    (layer,) = [x for x in spec["layer"] if x.get("name") == INTERVAL_LAYER]
    assert layer["mark"]["clip"] is True
    made = charts(run, replace(res, service=svc))
    assert "below zero is cut at the axis" in made["latency"]()
