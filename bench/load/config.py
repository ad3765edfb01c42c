"""What a load-generator process is told: its validated config, the endpoints, the bodies.

Kept apart from the engine (bench.load.generator) so that the runner, the tests and the benchmark
scripts can build and check a config without the generator's process machinery.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bench.errors import UserError
from bench.load.schedule import Stage
from bench.traffic.requestfile import HEALTH_NAME, HttpRequest, render_variants

__all__ = [
    "ENDPOINTS",
    "EndpointCall",
    "LoadConfig",
    "LoadgenError",
    "PayloadConfig",
    "StageConfig",
    "body_pools",
    "check_loopback",
    "load_config",
    "request_variants",
]


class LoadgenError(UserError):
    """A load generator that cannot start, was misconfigured, or ended without its summary."""


# ---------------------------------------------------------------------------------------------
# Endpoints and configuration


@dataclass(frozen=True)
class EndpointCall:
    """How one endpoint of the service is called: method, path, and the body's content type."""

    method: str
    path: str
    content_type: str | None = None  # None: the request carries no body
    headers: Mapping[str, str] = field(default_factory=dict)  # beside the content type


#: The service's endpoints (service/app.py). /health is not in the study's mix; it is here for
#: the generator's own fidelity benchmark, whose target must cost the server next to nothing.
ENDPOINTS: dict[str, EndpointCall] = {
    "churn": EndpointCall("POST", "/churn"),
    "json": EndpointCall("POST", "/json", "application/json"),
    "xml": EndpointCall("POST", "/xml", "application/xml"),
    "health": EndpointCall("GET", "/health"),
}


def check_loopback(url: str) -> str:
    """The URL if its host is loopback (127.0.0.0/8, ::1, localhost); LoadgenError otherwise.

    The generator sends hundreds of requests a second for minutes: pointed at another host by
    a typo it would be a denial-of-service tool, and its measurements would include a network.
    """
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise LoadgenError(f"base_url {url!r}: only plain http:// to a loopback address is used")
    host = parts.hostname or ""
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise LoadgenError(
                f"base_url {url!r}: host {host or '(none)'!r} is not loopback; the load "
                "generator only sends to 127.0.0.0/8, ::1 or localhost"
            )
    return url.rstrip("/")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_mix(mix: dict[str, float]) -> dict[str, float]:
    """A mix with finite weights, at least one above 0 (its names are checked by LoadConfig,
    which knows the request file's names)."""
    if any(not (w >= 0 and math.isfinite(w)) for w in mix.values()):
        raise ValueError("weights must be finite and 0 or more")
    if sum(mix.values()) <= 0:
        raise ValueError("at least one endpoint needs a weight above 0")
    return mix


class StageConfig(_Model):
    """One stage of the plan: a phase label, an open-loop rate and how long it lasts."""

    phase: str = Field(min_length=1)
    rate: float = Field(gt=0, le=100_000)
    duration_s: float = Field(ge=0, le=7 * 24 * 3600)
    mix: dict[str, float] | None = Field(
        None, description="this stage's endpoint mix (None: the run's mix)"
    )
    arrivals: Literal["uniform", "poisson"] = Field(
        "uniform", description="evenly spaced, or exponential gaps seeded by the run's seed"
    )
    ramp_s: float = Field(0.0, ge=0, description="seconds of linear change from ramp_from")
    ramp_from: float = Field(0.0, ge=0, description="the rate the ramp starts from")
    load_stage: int | None = Field(
        None, ge=1, description="which stage of the spec's load this is (1, 2, ...; None: none)"
    )

    @model_validator(mode="after")
    def _ramp(self) -> StageConfig:
        if self.ramp_s > self.duration_s:
            raise ValueError("ramp_s must not exceed duration_s")
        return self

    @field_validator("mix")
    @classmethod
    def _mix(cls, mix: dict[str, float] | None) -> dict[str, float] | None:
        return None if mix is None else _check_mix(mix)


class PayloadConfig(_Model):
    """The request bodies: the service's own payload stream, or a minimal constant body.

    "minimal" exists for the generator's own tests and fidelity benchmark, against a server
    that ignores bodies; a study run uses "service".
    """

    kind: Literal["service", "minimal"] = "service"
    min_items: int = Field(4, gt=0)
    max_items: int = Field(500, gt=0)
    distribution: Literal["log-uniform", "uniform"] = "log-uniform"
    seed: int = 7


class LoadConfig(_Model):
    """Everything one load-generator process needs; written as JSON by `start_loadgen`."""

    base_url: str
    stages: list[StageConfig] = Field(min_length=1)
    mix: dict[str, float]
    payload: PayloadConfig = Field(default_factory=PayloadConfig)
    seed: int = Field(1, description="seed of the endpoint sequence")
    timeout_s: float = Field(10.0, gt=0, le=300, description="per-request timeout")
    origin: float | None = Field(
        None, description="time.monotonic() value rows count from (None: the schedule's t0)"
    )
    start_at: float | None = Field(
        None, description="time.monotonic() value of t0 (None: as soon as bodies are ready)"
    )
    start_on_stdin: bool = Field(
        False,
        description="wait for a line on stdin giving t0 (a time.monotonic() value) before "
        "opening connections: the runner starts the generator while the service starts",
    )
    cpus: list[int] | None = Field(None, min_length=1, description="CPUs to pin the process to")
    allocator: str | None = None
    repeat: int | None = None
    pool_size: int = Field(64, gt=0, le=100_000, description="pre-generated bodies per endpoint")
    max_in_flight: int | None = Field(
        None, gt=0, description="safety valve (default: 4 x peak rate x timeout, at least 1000)"
    )
    warm_connections: int = Field(
        0, ge=0, le=1024, description="connections opened (GET /health) before t0"
    )
    probe_workers: int = Field(
        0,
        ge=0,
        le=1024,
        description="workers the probes of a stage with its own mix (the idle stage) rotate "
        "over, one kept-alive connection each (0: they share the load's connection pool, where "
        "a slow sequential stream ends up on one worker)",
    )
    progress_path: Path | None = None
    progress_interval_s: float = Field(1.0, gt=0)
    loop: Literal["asyncio", "uvloop"] = "asyncio"
    requests: list[HttpRequest] | None = Field(
        None,
        description="the request file's requests, by name in `mix` (None: the service's own "
        "endpoints /churn, /json, /xml)",
    )
    health_path: str = Field(
        "/health",
        pattern=r"^/",
        description="what the warm-up connections and the idle stage's probes ('health') GET: "
        "/health of the synthetic service, service.config.HOSTED_HEALTH_PATH of a hosted app",
    )

    @model_validator(mode="after")
    def _known_names(self) -> LoadConfig:
        known = set(self.calls())
        names = set(self.mix)
        for stage in self.stages:
            names |= set(stage.mix or {})
        unknown = sorted(names - known)
        if unknown:
            raise ValueError(f"unknown endpoints {unknown} (known: {', '.join(sorted(known))})")
        return self

    @field_validator("requests")
    @classmethod
    def _unique(cls, requests: list[HttpRequest] | None) -> list[HttpRequest] | None:
        names = [r.name for r in requests or []]
        if len(set(names)) != len(names) or HEALTH_NAME in names:
            raise ValueError(f"request names must be unique and not {HEALTH_NAME!r}")
        return requests

    def calls(self) -> dict[str, EndpointCall]:
        """Every endpoint this config can call, by name: the request file's requests (with
        the probe), or the service's own endpoints; 'health' GETs `health_path`."""
        health = EndpointCall("GET", self.health_path)
        if self.requests is None:
            return {**ENDPOINTS, HEALTH_NAME: health}
        out = {
            r.name: EndpointCall(r.method, r.path, r.content_type, r.headers) for r in self.requests
        }
        return {**out, HEALTH_NAME: health}

    @field_validator("base_url")
    @classmethod
    def _loopback(cls, url: str) -> str:
        try:
            return check_loopback(url)
        except LoadgenError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("mix")
    @classmethod
    def _mix(cls, mix: dict[str, float]) -> dict[str, float]:
        return _check_mix(mix)

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, cpus: list[int] | None) -> list[int] | None:
        if cpus is not None and any(c < 0 for c in cpus):
            raise ValueError("CPU numbers are 0 or more")
        return cpus

    def plan(self) -> list[Stage]:
        """The stages as the schedule sees them."""
        return [
            Stage(s.phase, s.rate, s.duration_s, s.mix, s.arrivals, s.ramp_s, s.ramp_from)
            for s in self.stages
        ]

    @property
    def endpoint_names(self) -> tuple[str, ...]:
        """Every endpoint any stage may call, sorted (the codes of the request rows)."""
        names = set(self.mix)
        for stage in self.stages:
            names |= set(stage.mix or {})
        return tuple(sorted(names))

    @property
    def planned_s(self) -> float:
        """Length of the whole schedule, seconds."""
        return sum(s.duration_s for s in self.stages)

    @property
    def in_flight_cap(self) -> int:
        """The safety valve: only a stuck service should ever reach it."""
        if self.max_in_flight is not None:
            return self.max_in_flight
        peak = max(s.rate for s in self.stages)
        return max(1000, math.ceil(4 * peak * self.timeout_s))

    @classmethod
    def from_service_spec(cls, service: Any, *, base_url: str, **extra: Any) -> LoadConfig:
        """The warm-up, load and idle stages, mix, payload and timeout of a spec's `service`.

        A warm-up rate left unset in the spec is a tenth of the load rate; a zero-length
        warm-up is left out. The idle stage exists only when the spec asks for idle traffic
        (`idle_rate` above 0): GET /health at that rate, as a deployment's probes would send
        (a hosted app's probe path is service.config.HOSTED_HEALTH_PATH, so the app's own
        routes are never the probe). A spec with a request file (`service.requests`) sends its
        requests, named as the file names them, instead of the built-in mix.
        64 connections per worker are opened before t0: the service's
        workers each listen on their own SO_REUSEPORT socket, the kernel hashes connections
        over them, and many connections reused in turn even out the load each worker serves
        (see `_warm_connections`). The idle stage's probes rotate over one connection per
        worker instead (`probe_workers`): at a probe rate of a few a second, the shared pool
        hands them all to one worker, and the others never free their expired buffers.
        `extra` fills the remaining keys (origin, cpus, allocator, ...) and may override any
        of these.
        """
        stages: list[dict[str, Any]] = [
            {
                "phase": st.phase,
                "rate": st.rate,
                "duration_s": st.duration_s,
                "arrivals": st.arrivals,
                "ramp_s": st.ramp_s,
                "ramp_from": st.ramp_from,
                "load_stage": index,
            }
            for index, st in enumerate(service.load_plan(), start=1)
        ]
        idle = service.idle_rate > 0 and service.idle_s > 0
        if idle:
            stages.append(
                {
                    "phase": "idle",
                    "rate": service.idle_rate,
                    "duration_s": service.idle_s,
                    "mix": {"health": 1.0},
                }
            )
        if service.warmup_s > 0:
            stages.insert(
                0,
                {
                    "phase": "warmup",
                    "rate": service.warmup_rate_used,
                    "duration_s": service.warmup_s,
                },
            )
        from service.config import health_path  # late: only study runs need it

        mix: dict[str, float] = dict(service.mix)
        requests: list[dict[str, Any]] | None = None
        request_mix = getattr(service, "request_mix", None)
        if request_mix is not None:  # the spec's request file replaces the built-in mix
            mix = request_mix.weights
            requests = [r.model_dump(mode="json") for r in request_mix.requests]
        return cls.model_validate(
            {
                "base_url": base_url,
                "warm_connections": 64 * service.workers,
                "probe_workers": service.workers if idle else 0,
                "stages": stages,
                "mix": mix,
                "requests": requests,
                "health_path": health_path(getattr(service, "app", None)),
                "payload": service.payload.model_dump(),
                "timeout_s": service.request_timeout_s,
                **extra,
            }
        )


def load_config(path: Path) -> LoadConfig:
    """Read and validate a config file; LoadgenError with one line per problem."""
    try:
        return LoadConfig.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LoadgenError(f"{path}: cannot read: {exc}") from None
    except ValidationError as exc:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(config)'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise LoadgenError("\n".join(lines)) from None


# ---------------------------------------------------------------------------------------------
# Request bodies


def _service_bodies(endpoint: str, payload: PayloadConfig, count: int) -> list[bytes]:
    """`count` bodies for an endpoint from the service's own deterministic payload stream."""
    from service import payloads  # imported late: only study runs need the service package

    stream = payloads.PayloadStream(
        payload.seed, payload.min_items, payload.max_items, payload.distribution
    )
    return [bytes(stream.body(endpoint)) for _ in range(count)]


_MINIMAL_BODIES = {"json": b'{"items": []}', "xml": b"<order/>"}


def body_pools(config: LoadConfig) -> dict[str, list[bytes]]:
    """Bodies for every endpoint of the mix, generated before t0 and then used round-robin.

    Generating a document costs far more than sending it; doing it inside the schedule would
    make send times depend on payload size. Endpoints without a body get no pool.
    """
    pools: dict[str, list[bytes]] = {}
    weights = dict(config.mix)
    for stage in config.stages:
        for name, weight in (stage.mix or {}).items():
            weights[name] = max(weight, weights.get(name, 0.0))
    for name in sorted(weights):
        call = ENDPOINTS.get(name)  # a request file's requests have variants instead
        if call is None or call.content_type is None or weights[name] <= 0:
            continue
        if config.payload.kind == "minimal":
            pools[name] = [_MINIMAL_BODIES.get(name, b"")]
        else:
            pools[name] = _service_bodies(name, config.payload, config.pool_size)
    return pools


def request_variants(config: LoadConfig) -> dict[str, list[tuple[str, bytes | None]]]:
    """(path, body) variants of every request of the file that any stage sends, rendered
    before t0 and then used round-robin, as the built-in bodies are.

    `pool_size` variants of a request with random fields, one of a fixed request; seeded by
    `payload.seed` and the request's name, so every repeat and every allocator sends the same
    variants (the endpoint sequence, seeded per repeat, decides which comes when).
    """
    weights = dict(config.mix)
    for stage in config.stages:
        for name, weight in (stage.mix or {}).items():
            weights[name] = max(weight, weights.get(name, 0.0))
    # a flow's later steps are sent whenever its first step is drawn
    flows = {r.flow for r in config.requests or [] if r.flow and weights.get(r.name, 0.0) > 0}
    return {
        r.name: render_variants(r, config.pool_size, config.payload.seed)
        for r in config.requests or []
        if weights.get(r.name, 0.0) > 0 or (r.flow is not None and r.flow in flows)
    }
