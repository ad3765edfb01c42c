"""The resolved spec of a run (manifest["spec"]) read defensively.

The manifest stores Spec.model_dump(mode="json"). A run made by an older or newer allocstudy
may not validate against today's models, so the report reads the plain dict with defaults
rather than refusing to show it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from service.config import start_buffers as _start_buffers

__all__ = [
    "allocator_names",
    "control_idle_s",
    "control_live_bytes",
    "get",
    "live_bytes",
    "mix_shares",
    "payload_text",
    "short_lifetime_text",
    "start_buffers",
]

_DEFAULTS: dict[str, Any] = {
    "repeats": 1,
    "service.workers": 4,
    "service.rate": 200.0,
    "service.warmup_s": 30.0,
    "service.load_s": 600.0,
    "service.idle_s": 120.0,
    "service.sample_interval_s": 1.0,
    "service.settle_window_s": 10.0,
    "service.python_malloc": "pymalloc",
    "service.idle_rate": 1.0,
    "service.request_timeout_s": 10.0,
    "service.mix": {"churn": 2, "json": 1, "xml": 1},
    "service.churn.live_buffers": 5000,
    "service.churn.initial_buffers": None,
    "service.churn.min_bytes": 4096,
    "service.churn.max_bytes": 65536,
    "service.churn.alloc_per_call": 64,
    "service.churn.long_lived_share": 0.006,
    "service.churn.short_lifetime_calls": 4,
    "service.payload.min_items": 4,
    "service.payload.max_items": 500,
    "service.payload.distribution": "log-uniform",
    "control.threads": 4,
    "control.live_bytes": "match-service",
    "control.seconds": 20.0,
    "control.idle_s": "match-service",
    "control.repeats": 3,
    "control.enabled": True,
}


def get(spec: dict[str, Any], dotted: str) -> Any:
    """spec['a']['b'] for 'a.b', falling back to the model's default when absent."""
    node: Any = spec
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _DEFAULTS.get(dotted)
        node = node[part]
    return node


def allocator_names(spec: dict[str, Any]) -> list[str]:
    """Names of the allocators the spec asked for, in its order."""
    out = []
    for entry in spec.get("allocators") or []:
        out.append(entry if isinstance(entry, str) else str(entry.get("name")))
    return out


def live_bytes(spec: dict[str, Any]) -> int:
    """The service's target live set over all workers (workers × buffers × mean size)."""
    mean = (get(spec, "service.churn.min_bytes") + get(spec, "service.churn.max_bytes")) / 2
    return int(get(spec, "service.workers") * get(spec, "service.churn.live_buffers") * mean)


def control_live_bytes(spec: dict[str, Any]) -> int:
    """The control's live set: the service's, or the byte count the spec gives."""
    value = get(spec, "control.live_bytes")
    return live_bytes(spec) if value == "match-service" else int(value)


def mix_shares(spec: dict[str, Any]) -> list[tuple[str, float]]:
    """Traffic mix as (endpoint, share of requests), largest share first."""
    mix = {k: float(v) for k, v in (get(spec, "service.mix") or {}).items() if float(v) > 0}
    total = sum(mix.values()) or 1.0
    return sorted(((k, v / total) for k, v in mix.items()), key=lambda kv: (-kv[1], kv[0]))


def control_idle_s(spec: dict[str, Any]) -> float:
    """The control's rest as the spec asked for it ("match-service": the service's idle)."""
    value = get(spec, "control.idle_s")
    if value == "match-service" or value is None:
        return float(get(spec, "service.idle_s"))
    return float(value)


def payload_text(spec: dict[str, Any]) -> str:
    """The documents /json and /xml receive: "4 to 500 line items, log-uniform"."""
    lo, hi = get(spec, "service.payload.min_items"), get(spec, "service.payload.max_items")
    return f"{lo:,} to {hi:,} line items, {get(spec, 'service.payload.distribution')}"


def start_buffers(spec: dict[str, Any]) -> int:
    """Buffers a worker allocates at start-up: the spec's initial_buffers, or the service's
    own default for it (service.config.start_buffers, so the two cannot disagree)."""
    churn = SimpleNamespace(
        initial_buffers=get(spec, "service.churn.initial_buffers"),
        live_buffers=get(spec, "service.churn.live_buffers"),
    )
    return _start_buffers(churn)


def short_lifetime_text(spec: dict[str, Any]) -> str:
    """How long a short-lived /churn buffer lives, in the unit the spec gives it: seconds
    (`short_lifetime_s`) or the worker's calls (`short_lifetime_calls`)."""
    churn = get(spec, "service.churn") or {}
    if isinstance(churn, dict) and churn.get("short_lifetime_s") is not None:
        return f"{float(churn['short_lifetime_s']):g} s"
    calls = churn.get("short_lifetime_calls") if isinstance(churn, dict) else None
    return f"{int(calls):,} calls" if calls is not None else "not recorded"
