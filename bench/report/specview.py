"""The resolved spec of a run (manifest["spec"]) read defensively.

The manifest stores Spec.model_dump(mode="json"). A run made by an older or newer allocstudy
may not validate against today's models, so the report reads the plain dict with defaults
rather than refusing to show it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from bench.spec import Spec
from service.config import start_buffers as _start_buffers

__all__ = [
    "allocator_names",
    "control_idle_s",
    "idle_floor_s",
    "control_live_bytes",
    "get",
    "live_bytes",
    "load_text",
    "mix_shares",
    "payload_text",
    "short_lifetime_text",
    "stages",
    "start_buffers",
    "warmup_rate",
]


def _flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Every key of a nested dict by its dotted path (inner dicts are kept under their path too)."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        out[path] = value
        if isinstance(value, dict):
            out.update(_flatten(value, f"{path}."))
    return out


#: Today's defaults, from the spec models themselves: one home for them.
_DEFAULTS: dict[str, Any] = _flatten(
    Spec(name="defaults", title="defaults", allocators=["glibc"]).model_dump(mode="json")
)


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


def idle_floor_s(spec: dict[str, Any]) -> float:
    """The least idle of an allocator without return timers (ServiceSpec.idle_floor_s): the
    idle when it is fixed, else idle_min_s or, without one, the settle window."""
    if get(spec, "service.idle_ends") != "settled":
        return float(get(spec, "service.idle_s"))
    floor = get(spec, "service.idle_min_s")
    return float(floor if floor is not None else get(spec, "service.settle_window_s"))


def control_idle_s(spec: dict[str, Any]) -> float:
    """The control's rest as the spec asked for it ("match-service": the service's idle, or
    its least idle when the idle ends once memory has settled; Spec.control_idle_s)."""
    value = get(spec, "control.idle_s")
    if value == "match-service" or value is None:
        return idle_floor_s(spec)
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
    """How long a short-lived /churn buffer lives on average, in seconds."""
    value = get(spec, "service.churn.short_lifetime_s")
    return f"{float(value):g} s" if value is not None else "not recorded"


def stages(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The load's stages as the spec gave them (empty: one rate for `load_s`)."""
    return [st for st in get(spec, "service.stages") or [] if isinstance(st, dict)]


def warmup_rate(spec: dict[str, Any]) -> float:
    """The warm-up's rate: as given, else a tenth of the load's first rate."""
    given = get(spec, "service.warmup_rate")
    if given:
        return float(given)
    first = stages(spec)
    return float(first[0]["rate"] if first else get(spec, "service.rate")) / 10


def load_text(spec: dict[str, Any]) -> str:
    """The load's rate in words: "200 requests/s", or its stages, each with its rate, length
    and ramp ("4 stages: steady 150/s for 90 s, burst 400/s for 60 s (5 s ramp), ...")."""
    staged = stages(spec)
    if not staged:
        return f"{float(get(spec, 'service.rate')):g} requests/s"
    parts = []
    for i, st in enumerate(staged, start=1):
        ramp = float(st.get("ramp_s") or 0)
        parts.append(
            f"{st.get('name') or f'stage{i}'} {float(st['rate']):g}/s for "
            f"{float(st['duration_s']):g} s" + (f" ({ramp:g} s ramp)" if ramp else "")
        )
    return (
        f"{len(staged)} stages (a mean of {float(get(spec, 'service.rate')):,.0f} requests/s): "
        + ", ".join(parts)
    )
