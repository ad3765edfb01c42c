"""The spec models: which allocators to compare, what load the service and the control get.

Pydantic models with every default and bound of the format (docs/guide/spec-format.md is
generated from them); a spec file is read into them by bench.spec.loading, which reports
every validation error as one line with its file, line and field.

One module for all of them (about 790 lines): the format is one tree, its cross-field rules
(the load against the live set, the idle against the timers) read several sections at once,
and the spec guide is generated from this tree in its order.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from typing_extensions import TypedDict

from bench.load.schedule import Stage, planned_requests
from bench.traffic.requestfile import RequestMix
from service.churn import calls_to_fill, short_pool
from service.config import (
    IDLE_PROBE_BLOCK_BYTES,
    IDLE_PROBE_MAX_BLOCK_BYTES,
    IDLE_PROBE_MAX_BLOCKS,
    ChurnConfig,
    churn_problems,
)
from service.process.childenv import ALLOCATOR_PREFIXES, ALLOCATOR_VARIABLES

__all__ = [
    "AGAIN_SUFFIX",
    "CalibrateSpec",
    "IdleProbeSpec",
    "ALLOCATOR_ENV_NAMES",
    "ALLOCATOR_ENV_PREFIXES",
    "BUILTIN_ALLOCATORS",
    "ChurnSpec",
    "ControlSpec",
    "LibraryAllocator",
    "MachineSpec",
    "PayloadSpec",
    "ServiceOverrides",
    "ServiceSpec",
    "SourceAllocator",
    "SourceSpec",
    "Spec",
    "UNHASHED_WHEN_NULL",
    "VariantAllocator",
    "usable_cores",
]


def usable_cores() -> int:
    """What `threads: cores` means: the CPUs this process may run on (its affinity), read on
    the machine that runs the control."""
    return max(1, len(os.sched_getaffinity(0)))


#: Allocators the registry knows by name (bench.allocators.registry resolves them).
BUILTIN_ALLOCATORS: tuple[str, ...] = (
    "glibc",
    "jemalloc",
    "tcmalloc",
    "mimalloc-v2",
    "mimalloc-v3",
    "mimalloc-bun",
)

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
#: The A/A duplicate of allocator x is named x + AGAIN_SUFFIX.
AGAIN_SUFFIX = "-again"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: Optional keys added to the format after runs were made, with the value that means "as
#: before they existed": left out of the spec hash at that value (Spec.canonical_json), so
#: adding one does not make every earlier run stale.
UNHASHED_WHEN_NULL: dict[str, object] = {
    "aa_pair": None,
    "hosts": [],
    "service.memory_limit_mb": None,
    "service.max_requests": None,
    "service.max_requests_jitter": 0,
    "service.app": None,
    "service.app_dir": None,
    "service.env": {},
    "service.interface": "auto",
    "service.requests": None,
    "service.idle_ends": "fixed",
    "service.idle_min_s": None,
    "control.warmup_s": 0.0,
    "service.arrivals": "uniform",
    "service.stages": None,
    "service.calibrate": None,
    "service.retention_every_s": 2.0,
    "service.idle_probe": None,
}
#: Environment a spec's `service.env` may not set: the harness sets these per allocator (the
#: preload, its knobs, Python's allocator, the service's own config), and a copy in the app's
#: environment would silently change what is measured. The same list the service refuses
#: (service.process.childenv), so a spec that loads is never refused at start-up.
ALLOCATOR_ENV_NAMES: tuple[str, ...] = ALLOCATOR_VARIABLES
ALLOCATOR_ENV_PREFIXES: tuple[str, ...] = (*ALLOCATOR_PREFIXES, "ALLOCSTUDY_")
APP_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"


def _app_env_name(name: str) -> str:
    if not re.match(ENV_NAME_PATTERN, name):
        raise ValueError("not a valid environment variable name")
    if name in ALLOCATOR_ENV_NAMES or name.startswith(ALLOCATOR_ENV_PREFIXES):
        raise ValueError(
            f"{name} is the harness's to set (per allocator): an app's env may not set "
            f"{', '.join(ALLOCATOR_ENV_NAMES)} or "
            f"{', '.join(p + '*' for p in ALLOCATOR_ENV_PREFIXES)}"
        )
    return name


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChurnSpec(_Model):
    """The live-set model of /churn, per worker (service.churn explains it; the guide too)."""

    live_buffers: int = Field(5000, gt=0, description="bound of the live set: buffers per worker")
    initial_buffers: int | None = Field(
        None,
        ge=0,
        description="long-lived buffers a worker allocates at start-up (default: 5% of "
        "live_buffers)",
    )
    min_bytes: int = Field(4096, gt=0, description="smallest buffer, bytes")
    max_bytes: int = Field(65536, gt=0, description="largest buffer, bytes")
    alloc_per_call: int = Field(16, gt=0, description="buffers allocated by one /churn call")
    long_lived_share: float = Field(
        0.015,
        ge=0,
        le=1,
        description="share of new buffers that are long-lived (pins, kept until evicted)",
    )
    short_lifetime_s: float = Field(
        5.0,
        gt=0,
        lt=1e6,
        description="mean time to live of a short-lived buffer, seconds (uniform over 0..2x); "
        "expired buffers are freed at the worker's next request",
    )
    seed: int = Field(1, description="seed of the per-worker random stream")

    @model_validator(mode="after")
    def _bounds(self) -> ChurnSpec:
        problems = churn_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def mean_bytes(self) -> float:
        return (self.min_bytes + self.max_bytes) / 2

    def config(self) -> ChurnConfig:
        """The same section as the service reads it."""
        return ChurnConfig(**self.model_dump())


class PayloadSpec(_Model):
    """The JSON and XML documents the load generator sends (order-like records).

    Sizes are drawn per document: log-uniform by default (as many documents of 4-40 items as
    of 40-400, so most are a few KB and some a few hundred KB, as real API traffic is), or
    uniform between the bounds.
    """

    min_items: int = Field(4, gt=0, description="fewest line items in one document")
    max_items: int = Field(500, gt=0, description="most line items in one document")
    distribution: Literal["log-uniform", "uniform"] = Field(
        "log-uniform", description="how the number of items is drawn between the bounds"
    )
    seed: int = Field(7, description="seed of the payload stream")

    @model_validator(mode="after")
    def _bounds(self) -> PayloadSpec:
        if self.min_items > self.max_items:
            raise ValueError(
                f"min_items ({self.min_items}) must not exceed max_items ({self.max_items})"
            )
        return self


Endpoint = Literal["churn", "json", "xml"]


class IdleProbeSpec(_Model):
    """The allocator calls each idle probe makes (service.idlework says why they matter)."""

    blocks: int = Field(
        gt=0,
        le=IDLE_PROBE_MAX_BLOCKS,
        description="blocks each probe mallocs and frees, one at a time",
    )
    block_bytes: int = Field(
        IDLE_PROBE_BLOCK_BYTES,
        gt=0,
        le=IDLE_PROBE_MAX_BLOCK_BYTES,
        description="bytes of each block (default 64 KiB: past jemalloc's 32 KiB thread "
        "cache, so every call can advance its decay)",
    )

    def describe(self) -> str:
        """The calls as the method section states them."""
        return f"{self.blocks:,} malloc/free pairs of {self.block_bytes / 1024:g} KiB each"


class CalibrateSpec(_Model):
    """Find the rate the app holds before measuring (bench.experiments.calibrate)."""

    fraction: float = Field(
        0.7, gt=0, le=1, description="the share of the rate found that the study runs at"
    )
    steps: int = Field(
        6, ge=2, le=12, description="steps of the ramp, doubling up to service.rate, its top"
    )
    step_s: float = Field(5.0, ge=1, le=120, description="seconds of each step")
    p99_bound_ms: float = Field(
        1000.0, gt=0, description="a step holds only with its p99 latency under this"
    )


#: The highest open-loop rate the load generator holds on this machine class with its send
#: lateness p99 within 2 ms (benchmarks/loadgen_fidelity.py, docs/guide/benchmarks.md): a
#: spec asking more would measure the generator, not the service.
GENERATOR_CEILING_RPS = 4000.0


def _generator_holds(rate: float) -> float:
    if rate > GENERATOR_CEILING_RPS:
        raise ValueError(
            f"{rate:g} requests/s is above the {GENERATOR_CEILING_RPS:g} the load generator "
            "holds on this machine class (benchmarks/loadgen_fidelity.py): a run would measure "
            "the generator, not the service"
        )
    return rate


class LoadStageSpec(_Model):
    """One stage of a load given as stages: a rate held for a time, reached by a ramp."""

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=32)] | None = Field(
        None, description="the stage's label in tables and charts (default: stage1, stage2, ...)"
    )
    rate: Annotated[float, AfterValidator(_generator_holds)] = Field(
        gt=0, description="requests per second, open loop"
    )
    duration_s: float = Field(gt=0, description="seconds the stage lasts, its ramp included")
    ramp_s: float = Field(
        0.0,
        ge=0,
        description="seconds at the stage's start over which the rate changes linearly from "
        "the previous stage's rate (the first stage's: the warm-up rate, or 0 without a "
        "warm-up) to this one",
    )

    @model_validator(mode="after")
    def _ramp_fits(self) -> LoadStageSpec:
        if self.ramp_s > self.duration_s:
            raise ValueError(
                f"ramp_s ({self.ramp_s:g}) must not exceed duration_s ({self.duration_s:g}): "
                "the ramp is part of the stage"
            )
        return self


class ServiceSpec(_Model):
    """The Python service experiment: workers, open-loop rate, phases and traffic mix."""

    workers: int = Field(4, gt=0, le=64)
    python_malloc: Literal["pymalloc", "malloc"] = "pymalloc"
    rate: Annotated[float, AfterValidator(_generator_holds)] = Field(
        200.0, gt=0, description="requests per second, open loop"
    )
    warmup_s: float = Field(30.0, ge=0)
    load_s: float = Field(600.0, gt=0)
    stages: list[LoadStageSpec] | None = Field(
        None,
        min_length=1,
        description="the load as stages run back to back ({rate, duration_s, ramp_s, name}), "
        "e.g. a burst, a trough and a second burst; `rate` and `load_s` are then the stages' "
        "mean rate and total length (null: one stage of `rate` for `load_s`)",
    )
    calibrate: CalibrateSpec | None = Field(
        None,
        description="before measuring, ramp the load on the first allocator up to `rate` in "
        "doubling steps, find the highest step the app holds (answered at 95% of the rate, "
        "p99 under the bound), and run the study at `fraction` of it (null: run at `rate`)",
    )
    arrivals: Literal["uniform", "poisson"] = Field(
        "uniform",
        description="how the load's requests arrive: uniform (evenly spaced at 1/rate) or "
        "poisson (exponential gaps of mean 1/rate, seeded: the same schedule on every "
        "allocator and run); open loop either way, latency from the intended send time",
    )
    idle_s: float = Field(
        120.0,
        ge=0,
        description="seconds of idle after the load; with idle_ends: settled, the most it lasts",
    )
    idle_ends: Literal["fixed", "settled"] = Field(
        "fixed",
        description="fixed: idle lasts idle_s; settled: it ends once memory has stayed within "
        "the settle band for settle_window_s, after at least idle_min_s and three times the "
        "allocator's return timers as read back (jemalloc's decay: 3 x 10 s), at most idle_s",
    )
    idle_min_s: float | None = Field(
        None,
        gt=0,
        description="with idle_ends: settled, the least idle of an allocator without return "
        "timers (default: settle_window_s); the C++ control rests this long under "
        "'match-service'",
    )
    sample_interval_s: float = Field(1.0, ge=0.1, le=60)
    settle_window_s: float = Field(
        10.0, gt=0, description="settled = median anon memory over the last this many s of idle"
    )
    warmup_rate: float | None = Field(
        None,
        gt=0,
        description="open-loop rate during warm-up (default: a tenth of rate, or of the first "
        "stage's rate when the load is given as stages)",
    )
    idle_rate: float = Field(
        1.0,
        ge=0,
        le=1000,
        description="GET /health requests per second during idle, as a deployment's probes "
        "send (0: a silent idle, where nothing calls the allocator)",
    )
    idle_probe: IdleProbeSpec | None = Field(
        None,
        description="allocator calls each idle probe makes ({blocks, block_bytes}): the "
        "activity on which jemalloc's decay and mimalloc's purge advance (null: a bare "
        "probe, whose small allocations may never reach them)",
    )
    request_timeout_s: float = Field(10.0, gt=0, le=300)
    retention_every_s: float = Field(
        2.0,
        ge=0,
        allow_inf_nan=False,
        description="every this many seconds each worker writes down where its memory sits "
        "(the allocator's statistics, the kernel's view) for the retention table (0: never)",
    )
    memory_limit_mb: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="a memory limit on the service's cgroup (supervisor and workers "
        "together), MB of 10^6 bytes, above 0; it caps all the cgroup is charged (anonymous "
        "memory, page cache, kernel memory), and a worker the kernel kills at it is recorded "
        "as a result, not a failure (null: no limit; needs a writable memory cgroup)",
    )
    max_requests: int | None = Field(
        None,
        ge=1,
        description="recycle each worker after this many requests, as gunicorn's max_requests "
        "and uvicorn's limit_max_requests do: it finishes the requests in flight, exits and is "
        "replaced by a fresh worker (null: never, the default; recycling hides fragmentation)",
    )
    max_requests_jitter: int = Field(
        0,
        ge=0,
        description="each worker's limit is drawn uniformly from max_requests to max_requests "
        "+ this (seeded), so workers do not all restart at once (ignored without max_requests)",
    )
    mix: dict[Endpoint, float] = Field(default_factory=lambda: {"churn": 2, "json": 1, "xml": 1})
    churn: ChurnSpec = Field(default_factory=ChurnSpec)
    payload: PayloadSpec = Field(default_factory=PayloadSpec)
    app: Annotated[str, Field(pattern=APP_PATTERN)] | None = Field(
        None,
        description="your own service, 'module:attribute' naming an ASGI app or a WSGI "
        "callable (null: the synthetic service); needs `requests`; `mix` and `payload` do not "
        "apply and may not be given",
    )
    app_dir: Path | None = Field(
        None,
        description="a folder added to every worker's import path, relative to the spec file "
        "(null: none)",
    )
    env: dict[Annotated[str, AfterValidator(_app_env_name)], str] = Field(
        default_factory=dict,
        description="extra environment for the service's processes; the harness's variables "
        "(LD_PRELOAD, PYTHONMALLOC, MALLOC_CONF, GLIBC_TUNABLES, MALLOC_*, MIMALLOC_*, "
        "TCMALLOC_*, JEMALLOC_*, _RJEM_*, HEAPPROFILE*, ALLOCSTUDY_*) are refused",
    )
    interface: Literal["auto", "asgi", "wsgi"] = Field(
        "auto", description="how `app` is called: auto (detected), asgi or wsgi"
    )
    requests: Path | None = Field(
        None,
        description="the request mix: a JSON-lines request file or a browser's .har export, "
        "relative to the spec file (null: the built-in mix of /churn, /json, /xml); required "
        "with `app`; replaces `mix` and `payload`",
    )
    _request_mix: RequestMix | None = PrivateAttr(None)

    @field_validator("mix")
    @classmethod
    def _mix(cls, mix: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in mix.values()):
            raise ValueError("weights must be 0 or more")
        if sum(mix.values()) <= 0:
            raise ValueError("at least one endpoint needs a weight above 0")
        return mix

    @field_validator("app_dir")
    @classmethod
    def _app_dir(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_dir():
            raise ValueError(f"no such folder: {path}")
        return path

    @field_validator("requests")
    @classmethod
    def _requests_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @model_validator(mode="after")
    def _app_needs_requests(self) -> ServiceSpec:
        if self.app is not None and self.requests is None:
            raise ValueError(
                "app needs requests: a request file (JSON lines) or a .har export of the "
                "traffic to send it"
            )
        if self.app is None and (self.app_dir is not None or self.interface != "auto"):
            raise ValueError("app_dir and interface belong to an app: set app, or drop them")
        if self.requests is not None:
            given = sorted({"mix", "payload"} & self.model_fields_set)
            if given:
                raise ValueError(
                    f"{' and '.join(given)} cannot be given with requests: the request file "
                    "is the traffic (drop them)"
                )
        return self

    @model_validator(mode="after")
    def _stages_make_the_load(self) -> ServiceSpec:
        """With stages, `rate` and `load_s` follow from them (given too, they must agree)."""
        if self.stages is None:
            return self
        if self.calibrate is not None:
            raise ValueError(
                "calibrate finds one rate and cannot be given with stages: set the stages' "
                "rates, or drop stages and give rate"
            )
        plan = self.load_plan()
        derived = {
            "load_s": sum(st.duration_s for st in plan),
            "rate": sum(planned_requests(st) for st in plan) / sum(st.duration_s for st in plan),
        }
        for key, value in derived.items():
            given = getattr(self, key)
            if key in self.model_fields_set and not math.isclose(given, value, rel_tol=1e-9):
                raise ValueError(
                    f"{key} ({given:g}) disagrees with the stages, whose "
                    f"{'mean rate' if key == 'rate' else 'total length'} is {value:g}: drop "
                    f"{key} (with stages it follows from them)"
                )
            object.__setattr__(self, key, value)  # frozen: set once, while validating
        return self

    @property
    def first_rate(self) -> float:
        """The load's rate at its start: the first stage's, or `rate`."""
        return self.stages[0].rate if self.stages else self.rate

    @property
    def peak_rate(self) -> float:
        """The highest rate the load reaches."""
        return max(st.rate for st in self.stages) if self.stages else self.rate

    @property
    def warmup_rate_used(self) -> float:
        """The warm-up's rate: `warmup_rate`, else a tenth of the load's first rate."""
        return self.warmup_rate or self.first_rate / 10

    def load_plan(self, phase: str = "load") -> list[Stage]:
        """The load's stages as the schedule runs them (bench.load.schedule), each labelled
        `phase`; a ramp starts from the stage before (the first: the warm-up's rate, or 0
        without a warm-up)."""
        if not self.stages:
            return [Stage(phase, self.rate, self.load_s, arrivals=self.arrivals)]
        before = self.warmup_rate_used if self.warmup_s > 0 else 0.0
        plan = []
        for st in self.stages:
            plan.append(
                Stage(phase, st.rate, st.duration_s, None, self.arrivals, st.ramp_s, before)
            )
            before = st.rate
        return plan

    @property
    def stage_names(self) -> list[str]:
        """Every load stage's label: its name, else stage1, stage2, ... (one: `load`)."""
        if not self.stages:
            return ["load"]
        return [st.name or f"stage{i}" for i, st in enumerate(self.stages, start=1)]

    @model_validator(mode="after")
    def _short_pool_fits(self) -> ServiceSpec:
        if self.requests is not None:
            return self  # the file's share of /churn is known once it is read (the loader)
        problem = self.short_pool_problem()
        if problem:
            raise ValueError(problem)
        return self

    def short_pool_problem(self) -> str | None:
        """Why the short-lived buffers alone would fill the live set at this load, or None.

        bench.spec.loading asks again once a request file is read, since the file's requests
        to /churn decide the share.
        """
        room = self.churn.live_buffers - self.churn.config().start_buffers
        if self.short_pool <= 0.9 * room:
            return None
        return (
            f"at this rate the short-lived buffers alone (about {self.short_pool:,.0f} a "
            f"worker) would fill churn.live_buffers ({self.churn.live_buffers}): raise "
            "live_buffers, or lower churn.alloc_per_call or churn.short_lifetime_s"
        )

    @model_validator(mode="after")
    def _window(self) -> ServiceSpec:
        if self.idle_s > 0 and self.settle_window_s > self.idle_s:
            raise ValueError(
                f"settle_window_s ({self.settle_window_s}) must not exceed idle_s ({self.idle_s})"
            )
        if self.idle_min_s is not None and self.idle_ends == "fixed":
            raise ValueError("idle_min_s applies only with idle_ends: settled")
        if self.idle_probe is not None and not (self.idle_rate > 0 and self.idle_s > 0):
            raise ValueError("idle_probe needs idle probes: idle_rate and idle_s above 0")
        if self.idle_ends == "settled" and self.idle_floor_s > self.idle_s:
            raise ValueError(
                f"idle_min_s ({self.idle_floor_s:g}) must not exceed idle_s ({self.idle_s:g}), "
                "the most an idle that ends once settled may last"
            )
        return self

    @property
    def idle_floor_s(self) -> float:
        """The least idle of an allocator without return timers: idle_s when the idle is
        fixed, else idle_min_s (by default the settle window, the least that can show a
        flat memory)."""
        if self.idle_ends == "fixed":
            return self.idle_s
        return self.idle_min_s if self.idle_min_s is not None else self.settle_window_s

    @property
    def live_bytes(self) -> int:
        """Target live set of the whole service (all workers), bytes."""
        return int(self.workers * self.churn.live_buffers * self.churn.mean_bytes)

    @property
    def hosted(self) -> bool:
        """True when the service under study is the user's app, not the synthetic one."""
        return self.app is not None

    @property
    def request_mix(self) -> RequestMix | None:
        """The request file's requests, as spec loading read and checked them (None: the
        built-in mix).

        The model never reads a file: bench.spec.loading reads the request file while it
        loads the spec (`with_request_mix`), so a bad line stops a run before anything
        starts. A spec validated without loading has no mix to give, and says so.
        """
        if self.requests is None:
            return None
        if self._request_mix is None:
            raise RuntimeError(
                f"the request file {self.requests} was not read: load the spec with "
                "bench.spec.loading (load_spec, parse_spec or spec_from_record)"
            )
        return self._request_mix

    def with_request_mix(self, mix: RequestMix) -> None:
        """Attach the request file's requests, read by spec loading (bench.spec.loading)."""
        self._request_mix = mix

    @property
    def churn_rate_per_worker(self) -> float:
        """/churn calls a worker serves per second of load, on average (0 for a hosted app;
        a request file's share is its requests to /churn)."""
        if self.hosted:
            return 0.0
        mix: dict[str, float] = dict(self.mix)
        if self.request_mix is not None:
            churn = sum(
                r.weight for r in self.request_mix.requests if r.path.split("?")[0] == "/churn"
            )
            mix = {"churn": churn, "other": sum(self.request_mix.weights.values()) - churn}
        share = mix.get("churn", 0.0) / sum(mix.values())
        return self.rate * share / self.workers

    @property
    def short_pool(self) -> float:
        """Short-lived buffers a worker holds at once at the load's highest rate."""
        at_peak = self.churn_rate_per_worker * self.peak_rate / self.rate
        return short_pool(self.churn.config(), at_peak)

    @property
    def fill_s(self) -> float | None:
        """Seconds of load until the live sets reach their bound, on average (None: never)."""
        per_worker = self.churn_rate_per_worker
        calls = calls_to_fill(self.churn.config(), per_worker)
        if per_worker <= 0 or calls == float("inf"):
            return None
        return calls / per_worker


class ControlSpec(_Model):
    """The bare C++ control: same churn, same allocators, no Python runtime."""

    threads: int | Literal["cores"] = Field(
        4,
        description="worker threads of the control, or 'cores': as many as the CPUs the "
        "control may use on the machine that runs it (more threads than CPUs take turns, and "
        "their throughput measures the scheduler as much as the allocator: flagged)",
    )
    warmup_s: float = Field(
        0.0,
        ge=0,
        description="seconds of churn before the measured `seconds`, left out of the "
        "throughput: every heap reaches its steady state first",
    )
    live_bytes: str | int = Field(
        "match-service", description="'match-service' or a byte count of the shared live set"
    )
    seconds: float = Field(20.0, gt=0)
    idle_s: Literal["match-service"] | Annotated[float, Field(ge=0)] = Field(
        "match-service",
        description="rest after the churn, with the live set held, so decay timers can act: "
        "'match-service' (the service's idle_s, so both settle over the same time) or seconds "
        "(0 or more); a rest shorter than the service's is flagged in the results",
    )
    repeats: int = Field(3, gt=0, le=100)
    share: Literal["shard", "global"] = Field(
        "shard",
        description="shard: each thread frees its own survivors, as each service worker does; "
        "global: any thread frees any survivor (cross-thread frees)",
    )
    enabled: bool = True

    @field_validator("threads", mode="before")
    @classmethod
    def _threads(cls, value: Any) -> Any:
        if value == "cores" and isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 256:
            return value
        raise ValueError("must be 'cores' or a whole number from 1 to 256")

    @field_validator("live_bytes")
    @classmethod
    def _live_bytes(cls, value: str | int) -> str | int:
        if value == "match-service" or (isinstance(value, int) and value > 0):
            return value
        raise ValueError("must be 'match-service' or a byte count greater than 0")

    @field_validator("idle_s", mode="before")
    @classmethod
    def _idle_s(cls, value: Any) -> Any:
        # Before pydantic's own union checks: one clear message instead of one per branch, and
        # no quiet coercion of a boolean or a quoted number into seconds.
        if value == "match-service" and isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(value) and value >= 0:
                return float(value)
        raise ValueError("must be 'match-service' or a number of seconds, 0 or more")


class MachineSpec(_Model):
    """Which confounds the runner may set on the machine (they are always recorded)."""

    set_confounds: bool = Field(
        True, description="turn THP off where writable (restored afterwards), drop caches as root"
    )
    pin_cores: bool = Field(True, description="pin the load generator away from the service")
    cgroup: Literal["auto", "none"] = Field(
        "auto", description="auto: a fresh memory cgroup per run when possible; none: procfs"
    )


class ServiceOverrides(TypedDict, total=False):
    """The service keys one allocator may set for itself: worker recycling, nothing else.

    Everything else in `service` is the experiment, the same for every allocator; recycling
    differs per allocator so that one run compares an allocator with and without it.
    """

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    max_requests: Annotated[int | None, Field(ge=1)]
    max_requests_jitter: Annotated[int, Field(ge=0)]


class VariantAllocator(_Model):
    """A built-in allocator with extra environment (e.g. jemalloc with background threads)
    or its own worker recycling (`service`: max_requests, max_requests_jitter)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    base: str
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(default_factory=dict)
    service: ServiceOverrides = Field(
        default_factory=lambda: ServiceOverrides(),
        description="service keys this allocator runs with instead of the spec's: only "
        "max_requests and max_requests_jitter (worker recycling)",
    )
    description: str = ""

    @field_validator("base")
    @classmethod
    def _known_base(cls, base: str) -> str:
        if base not in BUILTIN_ALLOCATORS:
            raise ValueError(f"unknown allocator {base!r} (known: {', '.join(BUILTIN_ALLOCATORS)})")
        return base


class LibraryAllocator(_Model):
    """An allocator given as a shared library file to preload."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    library: Path
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(default_factory=dict)
    description: str = ""


class SourceSpec(_Model):
    """Where a source-built allocator comes from and how cmake builds it."""

    path: Path | None = None
    git: str | None = None
    commit: Annotated[str, Field(pattern=r"^[0-9a-f]{7,40}$")] | None = None
    cmake_args: list[str] = Field(default_factory=list)
    library: str = Field("*.so", description="glob of the built shared library, in the build tree")

    @model_validator(mode="after")
    def _one_origin(self) -> SourceSpec:
        if (self.path is None) == (self.git is None):
            raise ValueError("give exactly one of path or git")
        if self.git is not None and self.commit is None:
            raise ValueError("a git source needs a pinned commit")
        return self


class SourceAllocator(_Model):
    """An allocator built from a source tree with cmake, cached while its inputs are unchanged."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    source: SourceSpec
    env: dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str] = Field(default_factory=dict)
    description: str = ""


def _entry_kind(value: Any) -> str:
    """Which kind of allocator entry a value is (called on raw input and on models)."""
    if isinstance(value, str):
        return "builtin"
    if isinstance(value, SourceAllocator):
        return "source"
    if isinstance(value, LibraryAllocator):
        return "library"
    if isinstance(value, VariantAllocator):
        return "variant"
    if isinstance(value, dict):
        if "source" in value:
            return "source"
        if "library" in value:
            return "library"
        return "variant"
    return "builtin"


def _known_builtin(name: str) -> str:
    if name not in BUILTIN_ALLOCATORS:
        raise ValueError(f"unknown allocator {name!r} (known: {', '.join(BUILTIN_ALLOCATORS)})")
    return name


BuiltinName = Annotated[str, AfterValidator(_known_builtin)]
AllocatorEntry = Annotated[
    Annotated[BuiltinName, Tag("builtin")]
    | Annotated[VariantAllocator, Tag("variant")]
    | Annotated[LibraryAllocator, Tag("library")]
    | Annotated[SourceAllocator, Tag("source")],
    Discriminator(_entry_kind),
]


#: A key or value of a `hosts:` requirement: it becomes part of a Dask resource name.
HostFact = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)]


class Spec(_Model):
    """One experiment: which allocators, what service load, what control."""

    _overrides: tuple[str, ...] = PrivateAttr(())

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    title: str = Field(min_length=1)
    description: str = ""
    allocators: list[AllocatorEntry] = Field(min_length=1)
    repeats: int = Field(1, gt=0, le=100)
    aa_pair: Annotated[str, Field(pattern=NAME_PATTERN)] | None = Field(
        None,
        description="run this allocator a second time as <name>-again: an A/A pair whose "
        "difference is the machine's noise floor, shown beside every ranking",
    )
    service: ServiceSpec = Field(default_factory=ServiceSpec)
    control: ControlSpec = Field(default_factory=ControlSpec)
    machine: MachineSpec = Field(default_factory=MachineSpec)
    hosts: list[dict[HostFact, HostFact]] = Field(
        default_factory=list,
        description="cluster runs only (--cluster): the kinds of host to run every cell on, "
        "each a mapping of facts a host advertises as Dask worker resources (e.g. "
        "[{arch: x86_64}, {arch: aarch64}] runs the whole matrix on both); empty: any host",
    )

    @field_validator("machine")
    @classmethod
    def _limit_needs_a_cgroup(cls, machine: MachineSpec, info: ValidationInfo) -> MachineSpec:
        service = info.data.get("service")
        if machine.cgroup == "none" and service is not None and service.memory_limit_mb:
            raise ValueError(
                "cgroup: none cannot hold service.memory_limit_mb (a limit is set on the "
                "service's memory cgroup): use cgroup: auto, or drop the limit"
            )
        return machine

    @field_validator("allocators")
    @classmethod
    def _allocators(cls, entries: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for entry in entries:
            name = entry if isinstance(entry, str) else entry.name
            if name in seen:
                raise ValueError(f"allocator {name!r} is listed twice")
            seen.add(name)
        return entries

    @field_validator("aa_pair")
    @classmethod
    def _aa_pair(cls, name: str | None, info: ValidationInfo) -> str | None:
        if name is None or "allocators" not in info.data:
            return name
        names = [e if isinstance(e, str) else e.name for e in info.data["allocators"]]
        if name not in names:
            raise ValueError(f"{name!r} is not one of the allocators ({', '.join(names)})")
        if f"{name}{AGAIN_SUFFIX}" in names:
            raise ValueError(f"an allocator is already named {name + AGAIN_SUFFIX!r}")
        return name

    @property
    def aa_again(self) -> str | None:
        """The name the A/A pair's second run goes by (None without a pair)."""
        return f"{self.aa_pair}{AGAIN_SUFFIX}" if self.aa_pair else None

    @property
    def allocator_names(self) -> list[str]:
        """Every allocator the run measures, the A/A duplicate last (furthest in time from
        its first run within a round, so the pair also spans the machine's drift)."""
        names = [e if isinstance(e, str) else e.name for e in self.allocators]
        return [*names, self.aa_again] if self.aa_again else names

    def service_for(self, name: str) -> ServiceSpec:
        """The service section as run under allocator `name`: the spec's, with the recycling
        keys of that allocator's entry (the A/A duplicate runs as its pair does)."""
        if self.aa_again is not None and name == self.aa_again and self.aa_pair is not None:
            name = self.aa_pair
        for entry in self.allocators:
            if isinstance(entry, VariantAllocator) and entry.name == name and entry.service:
                return self.service.model_copy(update=dict(entry.service))
        return self.service

    @property
    def control_live_bytes(self) -> int:
        """The C++ control's live set: the service's, or the byte count the spec gives."""
        if self.control.live_bytes == "match-service":
            return self.service.live_bytes
        return int(self.control.live_bytes)

    @property
    def control_threads(self) -> int:
        """The control's threads: the spec's number, or with 'cores' the CPUs this process
        may run on (its affinity), read on the machine that runs the control."""
        if self.control.threads == "cores":
            return usable_cores()
        return int(self.control.threads)

    @property
    def control_idle_s(self) -> float:
        """The C++ control's rest after its churn: the service's idle (its least idle when
        the idle ends once settled), or the seconds given.

        Matching the service by default lets the control's allocators run the same decay
        timers for as long, and settle over the same window, so their settled memory compares.
        """
        if self.control.idle_s == "match-service":
            return self.service.idle_floor_s
        return float(self.control.idle_s)

    def canonical_json(self) -> str:
        """A stable text of the resolved spec (defaults filled), the input of spec_hash.

        Keys added after runs existed (UNHASHED_WHEN_NULL) are left out at the value that
        means "as before they existed": a spec that does not use them keeps its hash, and its
        earlier runs stay current rather than stale.
        """
        data = self.model_dump(mode="json")
        for dotted, before in UNHASHED_WHEN_NULL.items():
            *parents, key = dotted.split(".")
            node = data
            for part in parents:
                node = node.get(part) or {}
            if key in node and node[key] == before:
                del node[key]
        mix = self.service.request_mix
        if mix is not None:  # the traffic itself, so editing the request file changes the hash
            data["service"]["requests_sha256"] = mix.sha256
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @property
    def overrides(self) -> tuple[str, ...]:
        """The `--set KEY=VALUE` changes this spec was loaded with, as typed (none: the file
        as it is). They are already in every field, so in spec_hash too; the manifest keeps
        the list so the article and `compare` can say the run differs from its file."""
        return self._overrides
