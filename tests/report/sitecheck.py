"""Checks any built site must pass against the results it was built from.

Kept apart from the synthetic data so a test that builds from a real run can reuse them
in one line: `build_and_check(results_dir, tmp_path / "site")`.
"""

from __future__ import annotations

import html
import json
import re
import statistics
from pathlib import Path

from bench.report.runfolders import find_studies
from bench.report.units import fmt_mb, fmt_mops, fmt_mops_cpu, fmt_ratio
from bench.results.tables import read_table

__all__ = [
    "build_and_check",
    "check_built_site",
    "external_refs",
    "quoted",
    "said",
    "table_rows",
]

_VALUE = re.compile(r'<span class="as-v" data-v="([^"]+)">(.*?)</span>', re.S)
_SAY = re.compile(r'<span class="as-say" data-say="([^"]+)">(.*?)</span>', re.S)
_URL = re.compile(r"""(?<![\w-])(?:https?:)?//[^\s"'<>)]+""")
_COMMENT = re.compile(r"/\*.*?\*/|<!--.*?-->|\\3c !--.*?--(?:>|\\3e)", re.S)
_XMLNS = re.compile(r"""xmlns(?::\w+)?=(["'])[^"']*\1""")


def quoted(page: str) -> dict[str, str]:
    """Named values on a page, as shown (first occurrence of each)."""
    out: dict[str, str] = {}
    for name, text in _VALUE.findall(page):
        out.setdefault(name, html.unescape(text))
    return out


def said(page: str) -> dict[str, str]:
    """Computed sentences on a page, as plain text (first occurrence of each)."""
    out: dict[str, str] = {}
    for name, text in _SAY.findall(page):
        out.setdefault(name, html.unescape(re.sub(r"<[^>]+>", "", text)))
    return out


def body_rows(page: str, table_id: str) -> list[dict[str, str]]:
    """Every body row of the page's table with that id, as {column title: text}."""
    m = re.search(rf'<table[^>]*id="{table_id}"[^>]*>(.*?)</table>', page, re.S)
    assert m, f"no table {table_id}"
    rows = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", m.group(1), re.S)
    ]
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]


def table_rows(page: str, table_id: str) -> dict[str, dict[str, str]]:
    """The rows of the page's table with that id, by first cell, as {column title: text}."""
    return {next(iter(r.values())): r for r in body_rows(page, table_id)}


def external_refs(site: Path) -> list[str]:
    """Every absolute or protocol-relative URL in the site's HTML, CSS and our JS.

    XML namespace declarations (xmlns="http://www.w3.org/...") name a namespace and
    comments (licence headers) are never fetched, so they are not counted.
    """
    found = []
    for path in site.rglob("*"):
        if not path.is_file() or (
            path.suffix not in (".html", ".css") and not path.name.startswith("allocstudy")
        ):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        text = _XMLNS.sub("", _COMMENT.sub("", text))
        found += [f"{path.relative_to(site)}: {u}" for u in _URL.findall(text)]
    return found


def _mean(rows: list[dict], experiment: str, allocator: str, column: str) -> float | None:
    """The mean of the clean repeats (none disturbed or, for the service, flagged), or of all
    when none is clean: the rule the article states, recomputed here from the table."""
    mine = [r for r in rows if r["experiment"] == experiment and r["allocator"] == allocator]
    clean = [
        r
        for r in mine
        if not r.get("disturbed") and not (experiment == "service" and r.get("flagged"))
    ]
    xs = [r[column] for r in clean or mine if r[column] is not None]
    return statistics.fmean(xs) if xs else None


def _again(run_dir: Path) -> set[str]:
    """The A/A duplicate's name (the rankings leave it out)."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    return {a["name"] for a in manifest.get("allocators") or [] if a.get("same_as")}


def check_built_site(site: Path, results: Path) -> None:
    """Every study's article quotes the numbers its summary table holds; nothing is fetched."""
    assert external_refs(site) == []
    studies = find_studies(results)
    newest = max(studies, key=lambda s: (s.current.started or "", s.current.run_id))
    home = "default" if any(s.name == "default" for s in studies) else newest.name
    for study in studies:
        page = site / ("index.html" if study.name == home else f"studies/{study.name}.html")
        text = page.read_text(encoding="utf-8")
        assert "{{" not in text, f"{page}: template text left in the page"
        values = quoted(text)
        run_dir = study.current.path
        rows = read_table(run_dir / "summary.arrow", "summary").to_pylist()
        again = _again(run_dir)
        names = sorted({r["allocator"] for r in rows if r["experiment"] == "service"} - again)
        settled = {n: _mean(rows, "service", n, "settled_anon_bytes") for n in names}
        peak = {n: _mean(rows, "service", n, "peak_anon_bytes") for n in names}
        sentences = said(text)
        if len(settled) >= 2:
            lean = min(settled.values())
            assert fmt_mb(lean) in sentences["headline"], page
            ratio = max(peak.values()) / lean
            assert values["heaviest_peak_to_leanest_settled.ratio"] == fmt_ratio(ratio), page
            for n in names:
                assert f"{n} ({fmt_mb(settled[n])}" in sentences["settled_ranking"] or (
                    fmt_mb(settled[n]) in sentences["settled_ranking"]
                ), (page, n)
        _check_overhead_and_method(text, values, sentences, rows, run_dir)
        speeds = {}
        for n in {r["allocator"] for r in rows if r["experiment"] == "control"} - again:
            if (x := _mean(rows, "control", n, "allocs_per_s")) is not None:
                speeds[n] = x
        control = read_table(run_dir / "control.arrow", "control").to_pylist()
        per_cpu = any(r.get("oversubscribed") for r in control)
        if len(speeds) >= 2:
            fmt = fmt_mops_cpu if per_cpu else fmt_mops
            key = "allocs_per_cpu_s" if per_cpu else "allocs_per_s"
            for n in speeds:
                x = _mean(rows, "control", n, key)
                assert x is not None and fmt(x) in sentences["control_ranking"], (page, n)
        for f in run_dir.glob("*.arrow"):
            copy = site / "data" / study.name / study.current.run_id / f.name
            assert copy.read_bytes() == f.read_bytes(), copy
            assert f'data/{study.name}/{study.current.run_id}/{f.name}"' in text


def _check_overhead_and_method(
    page: str,
    values: dict[str, str],
    sentences: dict[str, str],
    rows: list[dict],
    run_dir: Path,
) -> None:
    """The overhead ratios, the flags and the recorded method, as the tables hold them."""
    again = _again(run_dir)
    names = sorted({r["allocator"] for r in rows if r["experiment"] == "service"} - again)
    headline = table_rows(page, "headline-table")
    overheads = {}
    for n in names:
        settled = _mean(rows, "service", n, "overhead_settled")
        if settled is not None:
            overheads[n] = settled
            cell = headline[n]["overhead settled"]
            assert cell == fmt_ratio(settled) or cell.startswith(f"{fmt_ratio(settled)} ±"), n
    if overheads:
        assert fmt_ratio(min(overheads.values())) in sentences["overhead"]
        if "leanest_overhead_settled.ratio" in values:
            assert values["leanest_overhead_settled.ratio"] == fmt_ratio(min(overheads.values()))
    for r in rows:
        if r.get("flagged"):
            text = sentences["flags"]
            assert r["allocator"] in text and f"{r['experiment']} numbers" in text, r
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    method = manifest.get("method") or {}
    spec = table_rows(page, "spec-table")
    assert spec["Idle traffic"]["value"] == method.get("idle_traffic", "not recorded")
    reclaim = method.get("reclaim") or {}
    if reclaim.get("possible") is False:
        assert spec["Forced reclaim"]["value"].startswith("not possible: ")
        assert sentences["reclaim"].startswith("No forced reclaim ran")


def build_and_check(results: Path, site: Path) -> None:
    """Build the repository's site from `results` into `site`, then check it (one line)."""
    from synthetic_run import mkdocs_build

    proc = mkdocs_build(site, results)
    assert proc.returncode == 0, proc.stderr
    check_built_site(site, results)
