"""The site plan: which pages exist, what each page quotes, and how a page is rendered.

This is the engine's front door; the MkDocs plugin only forwards to it. One article page is
generated per study from one Markdown template; the home page is the `default` study (or the
newest study when there is none of that name); a generated page lists all studies and runs;
when two runs are named (`compare`), another sets them side by side (bench.report.pages.compare).
With `skip_bad_runs`, a run whose files cannot be read is left out instead of failing the
site: `Site.skipped` says which and why, and the runs page lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bench.report import specdoc
from bench.report.datatable import Column, html_table
from bench.report.errors import BadRunError, ReportError
from bench.report.pages import compare as comparison
from bench.report.reference import reference_section
from bench.report.render import Resolved, UnknownName, render
from bench.report.runfolders import RUN_COMMAND, SkippedRun, find_studies
from bench.report.section import keep_applying
from bench.report.sections import SECTIONS
from bench.report.study import StudyView
from bench.report.units import md_safe

__all__ = ["HOME", "RUNS_PAGE", "Site"]

HOME = "index.md"
RUNS_PAGE = "runs.md"

#: Tables that do not depend on a study (the spec format, the list of names).
_GLOBAL_TABLES = ("spec_keys", "allocator_forms", "named_values")


class Site:
    """Studies found under a results folder, and the pages built from them."""

    def __init__(
        self,
        results: Path,
        *,
        roots: Sequence[Path] = (),
        default_study: str = "default",
        use_directory_urls: bool = False,
        skip_bad_runs: bool = False,
        compare: Sequence[str] = (),
        reference: Path | None = None,
    ):
        self.results = results
        #: runs left out because their files cannot be read (only with skip_bad_runs)
        self.skipped: list[SkippedRun] = []
        studies = find_studies(results, skipped=self.skipped if skip_bad_runs else None)
        roots = [results.resolve().parent, *roots]
        self.views = {s.name: StudyView(s, roots) for s in studies}
        if skip_bad_runs:  # read each shown run now, so a bad one is left out, not fatal later
            self.views = {n: v for n, v in self.views.items() if self._readable(v)}
        #: the runs committed with the project (reference/): listed always, shown as the
        #: article only while there is no local run (bench.report.reference)
        self.reference = reference
        self.references = find_studies(reference) if reference is not None else []
        self.showing_reference = not self.views and bool(self.references)
        if self.showing_reference:
            self.views = {
                s.name: StudyView(s, [*roots, reference.resolve().parent]) for s in self.references
            }  # type: ignore[union-attr]
        if not self.views:
            raise ReportError(
                f"no readable run under {results} ({len(self.skipped)} left out, the first "
                f"{self.skipped[0].path}: {self.skipped[0].problem})"
                if self.skipped
                else f"no results found under {results}: run a study first with "
                f"`{RUN_COMMAND}`, or point the site at another folder with "
                "ALLOCSTUDY_RESULTS=/path/to/results"
            )
        studies = [v.study for v in self.views.values()]
        newest = max(studies, key=lambda s: (s.current.started or "", s.current.run_id))
        self.home = default_study if default_study in self.views else newest.name
        self.use_directory_urls = use_directory_urls
        #: the two runs the comparison page compares (none: no such page)
        self.compare = list(compare)

    def _readable(self, view: StudyView) -> bool:
        """Whether the run a study shows can be read; if not, it is recorded as skipped."""
        try:
            view.run  # noqa: B018 (loads the manifest and tables, cached for the pages)
        except BadRunError as exc:
            self.skipped.append(SkippedRun.of(exc))
            return False
        return True

    # ------------------------------------------------------------------ the page plan

    def article_pages(self) -> dict[str, str]:
        """src path of each article page → its study."""
        pages = {HOME: self.home}
        for name in sorted(self.views):
            if name != self.home:
                pages[f"studies/{name}.md"] = name
        return pages

    def study_of(self, src_uri: str) -> str:
        """The study a page quotes by default: its own for an article, else the home one."""
        return self.article_pages().get(src_uri, self.home)

    def data_files(self) -> dict[str, Path]:
        """Site path → file, for the Arrow files of every study's current run."""
        out = {}
        for view in self.views.values():
            for path in view.run.files.values():
                out[f"{view.data_dir()}/{path.name}"] = path
        return out

    def page_link(self, from_src: str, to_src: str) -> str:
        """A Markdown link target from one page to another (MkDocs rewrites .md links)."""
        depth = from_src.count("/")
        return "../" * depth + to_src

    def _prefix(self, src_uri: str) -> str:
        depth = src_uri.count("/")
        if self.use_directory_urls and src_uri not in (HOME,) and not src_uri.endswith("/index.md"):
            depth += 1
        return "../" * depth

    # ------------------------------------------------------------------ rendering

    def render(self, src_uri: str, markdown: str, *, page_label: str | None = None) -> str:
        """A page's Markdown with every placeholder substituted and banners on top."""
        own = self.study_of(src_uri)
        prefix = self._prefix(src_uri)
        label = page_label or src_uri

        def lookup(kind: str, name: str, study: str | None) -> Resolved:
            view = self._view(study or own)
            return self._resolve(view, kind, name, prefix, src_uri)

        is_article = src_uri in self.article_pages()
        if is_article:  # the sections this run did not measure are left off its page
            run = self.views[own].run
            applies = {s.name: s.applies(run) for s in SECTIONS}
            markdown = keep_applying(markdown, applies, label)
        rendered = render(markdown, page=label, lookup=lookup)
        if not is_article and not rendered.runs:
            return rendered.markdown
        view = self.views[own]
        runs = set(rendered.runs) | ({view.run_key} if is_article else set())
        notes = view.banners(sorted(runs)) if (is_article or len(runs) > 1) else []
        return _after_title(rendered.markdown, "\n\n".join(notes))

    def _view(self, study: str) -> StudyView:
        if study not in self.views:
            raise UnknownName("study", self.views)
        return self.views[study]

    def _resolve(
        self, view: StudyView, kind: str, name: str, prefix: str, src_uri: str
    ) -> Resolved:
        if kind == "table" and name in _GLOBAL_TABLES:
            return Resolved(self._global_table(name, src_uri))
        table: dict[str, Callable[[], str]]
        if kind == "v":
            if name not in view.values:
                raise UnknownName("value name", view.values)
            return Resolved(md_safe(view.values[name]), view.run_key)
        table = {"say": view.sentences, "chart": view.charts}.get(kind) or view.tables(prefix)
        if name not in table:
            what = {"say": "sentence", "chart": "chart", "table": "table"}[kind]
            raise UnknownName(
                f"{what} name", [*table, *(_GLOBAL_TABLES if kind == "table" else ())]
            )
        return Resolved(table[name](), view.run_key)

    def _global_table(self, name: str, src_uri: str) -> str:
        if name == "spec_keys":
            return specdoc.spec_keys_table()
        if name == "allocator_forms":
            return specdoc.allocator_forms_table()
        view = self.views[self.study_of(src_uri)]
        rows = [[f"v.{k}", v] for k, v in sorted(view.values.items())]
        rows += [[f"say.{k}", "a computed sentence"] for k in sorted(view.sentences)]
        rows += [[f"chart.{k}", "a figure with its data table"] for k in sorted(view.charts)]
        rows += [[f"table.{k}", "an HTML table"] for k in sorted(view.tables(""))]
        rows += [[f"table.{k}", "an HTML table (any page)"] for k in _GLOBAL_TABLES]
        return html_table(
            [Column("name"), Column(f"value for study {view.study.name}")],
            rows,
            table_id="named-values",
        )

    # ------------------------------------------------------------------ the comparison page

    def compare_page(self) -> str | None:
        """Markdown of the page comparing the two runs `compare` names; None without them."""
        if not self.compare:
            return None
        a, b = comparison.load_sides(self.results, self.compare, self.views)
        return comparison.comparison_page(a, b)

    # ------------------------------------------------------------------ the runs page

    def runs_page(self) -> str:
        """Markdown of the page that lists every study and every run found."""
        pages = {study: src for src, study in self.article_pages().items()}
        lines = [
            "# Studies and runs",
            "",
            (
                "No run was found under "
                f"{md_safe(self.results.name)}/: the articles show the reference runs "
                "committed with the project (listed below). Your first run takes over."
                if self.showing_reference
                else f"Every study found under {md_safe(self.results.name)}/, one per spec. "
                "Each article is built from the run its study's `latest` names (the newest "
                "complete run); older runs stay on disk and are listed here."
            ),
            "",
            "| study | article | run shown | status | started | runs |",
            "|---|---|---|---|---|---|",
        ]
        for name in sorted(self.views):
            v = self.views[name]
            cur = v.study.current
            title = md_safe(v.run.spec.get("title") or name)
            link = self.page_link(RUNS_PAGE, pages[name])
            lines.append(
                f"| {md_safe(name)}{' (home)' if name == self.home else ''} | "
                f"[{title}]({link}) | {md_safe(cur.run_id)} | {md_safe(cur.status)} | "
                f"{md_safe(cur.started or 'not recorded')} | {len(v.study.runs)} |"
            )
        for name in sorted(self.views):
            v = self.views[name]
            lines += [
                "",
                f"## {md_safe(name)}",
                "",
                "| run | status | started | finished |",
                "|---|---|---|---|",
            ]
            for r in v.study.runs:
                shown = " (shown)" if r.run_id == v.study.current.run_id else ""
                lines.append(
                    f"| {md_safe(r.run_id)}{shown} | {md_safe(r.status)} | "
                    f"{md_safe(r.started or '')} | {md_safe(r.finished or '')} |"
                )
        lines += reference_section(self.references, showing=self.showing_reference)
        if self.skipped:
            lines += [
                "",
                "## Runs left out",
                "",
                "These run folders could not be read, and the site was built without them "
                "(`skip_bad_runs: true`):",
                "",
                "| run | problem |",
                "|---|---|",
            ]
            for skip in self.skipped:
                where = f"{skip.path.parent.name}/{skip.path.name}"
                lines.append(f"| {md_safe(where)} | {md_safe(skip.problem)} |")
        return "\n".join(lines) + "\n"


def _after_title(markdown: str, block: str) -> str:
    """Insert a block right after the page's first-level title (or at the top)."""
    if not block:
        return markdown
    lines = markdown.split("\n")
    for i, line in enumerate(lines[:20]):
        if line.startswith("# "):
            return "\n".join([*lines[: i + 1], "", block, "", *lines[i + 1 :]])
    return block + "\n\n" + markdown
