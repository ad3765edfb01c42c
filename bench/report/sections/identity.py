"""The run itself: which study, run, host, tool version and spec the article shows.

Quoted in the article's first line and in Provenance ({{ v.run.id }}, {{ v.host.name }}, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bench.report.runfolders import Freshness, Run
from bench.report.section import Loaded, Section
from bench.report.units import fmt_duration

__all__ = ["IdentitySection", "identity_values"]


@dataclass(frozen=True)
class Identity:
    run: Run
    fresh: Freshness


class IdentitySection(Section[Identity]):
    name = "identity"

    def compute(self, loaded: Loaded) -> Identity:
        return Identity(loaded.run, loaded.freshness)

    def values(self, data: Identity) -> dict[str, str]:
        return identity_values(data.run, data.fresh)


def identity_values(run: Run, fresh: Freshness) -> dict[str, str]:
    """The run's own record as named values (Provenance's table quotes them too)."""
    out = _run_values(run, fresh)
    started, finished = run.manifest.get("started"), run.manifest.get("finished")
    out["run.duration"] = _elapsed(started, finished)
    return out


def _run_values(run: Run, fresh: Freshness) -> dict[str, str]:
    m = run.manifest
    tool, host = m.get("tool") or {}, m.get("host") or {}
    conf = m.get("confounds") or {}
    thp = conf.get("thp") if isinstance(conf.get("thp"), dict) else {"during": conf.get("thp")}
    pressure = conf.get("cpu_pressure") if isinstance(conf.get("cpu_pressure"), dict) else {}
    mem = host.get("memory_bytes")
    return {
        "study.name": str(m.get("spec_name") or run.ref.study),
        "study.title": str(run.spec.get("title") or run.ref.study),
        "study.description": str(run.spec.get("description") or "").strip() or "(none)",
        "run.id": run.ref.run_id,
        "run.status": run.ref.status,
        "run.started": str(m.get("started") or "not recorded"),
        "run.finished": str(m.get("finished") or "not recorded"),
        "run.date": str(m.get("started") or "not recorded")[:10],
        "tool.version": str(tool.get("version") or "not recorded"),
        "tool.commit": str(tool.get("git_commit") or "not recorded"),
        "tool.dirty": "yes" if tool.get("git_dirty") else "no",
        "host.name": str(host.get("hostname") or "not recorded"),
        "host.cpu": str(host.get("cpu_model") or "not recorded"),
        "host.cores": str(host.get("cores") or "not recorded"),
        "host.memory": f"{mem / 1e9:.0f} GB" if mem else "not recorded",
        "host.kernel": str(host.get("kernel") or "not recorded"),
        "host.glibc": str(host.get("glibc") or "not recorded"),
        "host.python": str(host.get("python") or "not recorded"),
        "spec.file": str(m.get("spec_file") or "not recorded"),
        "spec.hash": str(m.get("spec_sha256") or "not recorded")[:12],
        "spec.freshness": fresh.state,
        "confounds.thp": str(thp.get("during") or "not recorded"),
        "confounds.swap": (
            f"{conf['swap_bytes'] / 1e6:,.0f} MB"
            if conf.get("swap_bytes")
            else "off"
            if conf.get("swap_bytes") == 0
            else "not recorded"
        ),
        "confounds.governor": str(conf.get("governor") or "none available"),
        "confounds.cgroup": str(conf.get("cgroup_mode") or "not recorded"),
        "confounds.python_malloc": str(conf.get("python_malloc") or "not recorded"),
        "confounds.cpu_pressure": (
            f"{pressure.get('avg10_end'):.1f}%"
            if pressure.get("avg10_end") is not None
            else "not recorded"
        ),
    }


def _elapsed(started: str | None, finished: str | None) -> str:
    try:
        a = datetime.fromisoformat(str(started))
        b = datetime.fromisoformat(str(finished))
    except (TypeError, ValueError):
        return "not recorded"
    return fmt_duration((b - a).total_seconds())
