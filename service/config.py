"""The service's configuration, as the launcher hands it to every worker.

The launcher puts the spec's service section (`ServiceSpec.model_dump()`) as JSON into one
environment variable; each worker's app factory reads it back here. The service does not
import `bench` (its spec models pull in YAML and pydantic machinery a measured worker has no
use for), so the few fields it needs are checked again here, with the same names and bounds.
Keys the service does not use (rate, phases, mix...) are ignored. The supervisor reads the
recycling keys (`max_requests`, `max_requests_jitter`: service.recycling). One key is the
service's own, not a spec key: `body_timeout_s`, the seconds a request body may take to arrive
(service.bodies; the tests shorten it).

With `app` set ("module:attr", an ASGI app or a WSGI callable) the workers serve that app
instead of the synthetic one (service.hosted): `app_dir` goes first on their import path,
`env` into their environment (the launcher adds it), `interface` says ASGI or WSGI when
detection is not wanted. Such an app keeps its own routes; the harness answers under
HOSTED_PREFIX (`stats_path`, `health_path`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from service.bodies import BODY_TIMEOUT_S
from service.process.childenv import ALLOCATOR_PREFIXES, ALLOCATOR_VARIABLES

__all__ = [
    "CONFIG_ENV",
    "HOSTED_HEALTH_PATH",
    "HOSTED_PREFIX",
    "HOSTED_STATS_PATH",
    "IDLE_PROBE_BLOCK_BYTES",
    "IDLE_PROBE_MAX_BLOCKS",
    "IDLE_PROBE_MAX_BLOCK_BYTES",
    "health_path",
    "INTERFACES",
    "ChurnConfig",
    "churn_problems",
    "start_buffers",
    "ConfigError",
    "ServiceConfig",
    "config_from_env",
    "config_to_env",
]

#: Environment variable holding the JSON of the spec's service section.
CONFIG_ENV = "ALLOCSTUDY_SERVICE_CONFIG"

#: Where a hosted app (the spec's `service.app`, service.hosted) answers the harness itself:
#: under a prefix no real app uses, so the app's own routes stay the app's.
HOSTED_PREFIX = "/__allocstudy__"
HOSTED_STATS_PATH = f"{HOSTED_PREFIX}/stats"
HOSTED_HEALTH_PATH = f"{HOSTED_PREFIX}/health"


def health_path(app: str | None) -> str:
    """The health check of a service serving `app` (None: the built-in service's /health):
    where the launcher waits for readiness and the load generator sends its probes."""
    return HOSTED_HEALTH_PATH if app is not None else "/health"


#: How a hosted app is served: detected, or as the spec says.
INTERFACES = ("auto", "asgi", "wsgi")

# "package.module:attr.attr", as uvicorn's own import strings.
_APP_REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class ConfigError(ValueError):
    """A service configuration that cannot be used; the message names the field."""


def _int(data: Mapping[str, Any], key: str, default: int, *, minimum: int | None = 1) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"churn.{key} must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"churn.{key} must be at least {minimum}, not {value}")
    return value


def _seconds(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e6:
        raise ConfigError(f"churn.{key} must be a number of seconds above 0, not {value!r}")
    return float(value)


def _share(data: Mapping[str, Any], key: str, default: float) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ConfigError(f"churn.{key} must be a number from 0 to 1, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class ChurnConfig:
    """The live-set model's knobs (names and defaults of bench.spec.ChurnSpec; a test pins it).

    See service.churn for the model: the live set starts at `initial_buffers`, grows by pins
    (long-lived buffers) up to `live_buffers`, and every call allocates `alloc_per_call`
    buffers, most of them short-lived (`short_lifetime_s` seconds on average).
    """

    live_buffers: int = 5000
    initial_buffers: int | None = None
    min_bytes: int = 4096
    max_bytes: int = 65536
    alloc_per_call: int = 16
    long_lived_share: float = 0.015
    short_lifetime_s: float = 5.0
    seed: int = 1

    def __post_init__(self) -> None:
        for problem in churn_problems(self):
            raise ConfigError(f"churn.{problem}")

    @property
    def start_buffers(self) -> int:
        """Buffers allocated at worker start-up: `initial_buffers`, else 5% of the bound."""
        return start_buffers(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChurnConfig:
        if not isinstance(data, Mapping):
            raise ConfigError(f"churn must be a mapping, not {type(data).__name__}")
        return cls(
            live_buffers=_int(data, "live_buffers", cls.live_buffers),
            initial_buffers=(
                None
                if data.get("initial_buffers") is None
                else _int(data, "initial_buffers", 0, minimum=0)
            ),
            min_bytes=_int(data, "min_bytes", cls.min_bytes),
            max_bytes=_int(data, "max_bytes", cls.max_bytes),
            alloc_per_call=_int(data, "alloc_per_call", cls.alloc_per_call),
            long_lived_share=_share(data, "long_lived_share", cls.long_lived_share),
            short_lifetime_s=_seconds(data, "short_lifetime_s", cls.short_lifetime_s),
            seed=_int(data, "seed", cls.seed, minimum=None),
        )


def start_buffers(churn: Any) -> int:
    """The start-up buffers of a churn section: as given, else 5% of live_buffers."""
    if churn.initial_buffers is not None:
        return int(churn.initial_buffers)
    return int(churn.live_buffers) // 20


def churn_problems(churn: Any) -> list[str]:
    """What is inconsistent between a churn section's values (one "field: message" each).

    Shared by the spec model (bench.spec.ChurnSpec) and this config, so both refuse the same.
    """
    problems = []
    if churn.min_bytes > churn.max_bytes:
        problems.append(
            f"min_bytes: {churn.min_bytes} must not exceed max_bytes ({churn.max_bytes})"
        )
    if churn.initial_buffers is not None and churn.initial_buffers > churn.live_buffers:
        problems.append(
            f"initial_buffers: {churn.initial_buffers} must not exceed "
            f"live_buffers ({churn.live_buffers})"
        )
    return problems


def _recycling(data: Mapping[str, Any]) -> tuple[int | None, int]:
    """max_requests (None or at least 1) and max_requests_jitter (0 or more) of a section."""
    limit, jitter = data.get("max_requests"), data.get("max_requests_jitter", 0)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"max_requests must be null or an integer of 1 or more, not {limit!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, int) or jitter < 0:
        raise ConfigError(f"max_requests_jitter must be an integer of 0 or more, not {jitter!r}")
    return limit, jitter


def _hosted(data: Mapping[str, Any]) -> tuple[str | None, str | None, dict[str, str], str]:
    """app, app_dir, env and interface of a section, checked (None/empty: the synthetic app)."""
    app, app_dir = data.get("app"), data.get("app_dir")
    env, interface = data.get("env") or {}, data.get("interface") or "auto"
    if app is not None and (not isinstance(app, str) or not _APP_REF.match(app)):
        raise ConfigError(f"app must be 'module:attribute', not {app!r}")
    if app_dir is not None and not isinstance(app_dir, str | os.PathLike):
        raise ConfigError(f"app_dir must be a path, not {app_dir!r}")
    if interface not in INTERFACES:
        raise ConfigError(f"interface must be one of {', '.join(INTERFACES)}, not {interface!r}")
    if not isinstance(env, Mapping):
        raise ConfigError(f"env must be a mapping of names to strings, not {env!r}")
    for key, value in env.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigError(f"env must map names to strings, not {key!r}: {value!r}")
        if key in ALLOCATOR_VARIABLES or key.startswith(ALLOCATOR_PREFIXES + ("ALLOCSTUDY_",)):
            raise ConfigError(f"env: {key} is the harness's to set, not the app's")
    return app, None if app_dir is None else os.fspath(app_dir), dict(env), interface


#: Bounds of a health probe's allocator calls (service.idlework): enough for any idle, and
#: never a probe that takes long or a block the machine cannot give.
IDLE_PROBE_MAX_BLOCKS = 4096
IDLE_PROBE_MAX_BLOCK_BYTES = 16 * 2**20
#: A probe's block size unless said: 64 KiB, past jemalloc's 32 KiB thread cache (its default
#: `opt.tcache_max`), so every call can advance its decay.
IDLE_PROBE_BLOCK_BYTES = 64 * 1024


def _idle_probe(section: Any) -> tuple[int, int]:
    """blocks and block_bytes of a service's `idle_probe` (None: no calls), checked."""
    if section is None:
        return 0, 0
    if not isinstance(section, Mapping):
        raise ConfigError(f"idle_probe must be a mapping, not {section!r}")

    def whole(key: str, top: int, default: int | None = None) -> int:
        value = section.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= top:
            raise ConfigError(
                f"idle_probe.{key} must be a whole number above 0, at most {top}, not {value!r}"
            )
        return value

    return (
        whole("blocks", IDLE_PROBE_MAX_BLOCKS),
        whole("block_bytes", IDLE_PROBE_MAX_BLOCK_BYTES, IDLE_PROBE_BLOCK_BYTES),
    )


@dataclass(frozen=True)
class ServiceConfig:
    """What a worker needs to know: the churn bounds, the PYTHONMALLOC mode asked for, how
    long a request body may take to arrive; and, for the supervisor, worker recycling."""

    churn: ChurnConfig = field(default_factory=ChurnConfig)
    python_malloc: str = "pymalloc"
    body_timeout_s: float = BODY_TIMEOUT_S
    #: Requests after which a worker is replaced (None: never), as gunicorn's max_requests.
    max_requests: int | None = None
    #: Each worker's limit is drawn from max_requests .. max_requests + this, inclusive.
    max_requests_jitter: int = 0
    #: The hosted app, "module:attr" (None: the synthetic service, service.app).
    app: str | None = None
    #: Put first on the workers' import path (absolute: the spec resolves it).
    app_dir: str | None = None
    #: Extra environment of the service (the launcher adds it; no allocator variable).
    env: dict[str, str] = field(default_factory=dict)
    #: "auto" (detected), "asgi" or "wsgi".
    interface: str = "auto"
    #: Each health probe mallocs and frees this many blocks (service.idlework; 0: none) ...
    idle_probe_blocks: int = 0
    #: ... of this many bytes each.
    idle_probe_block_bytes: int = 0

    @property
    def hosted(self) -> bool:
        """Whether the workers serve a user's app (service.hosted) instead of service.app."""
        return self.app is not None

    @property
    def stats_path(self) -> str:
        """Where each worker answers its stats: /stats, or HOSTED_STATS_PATH for a hosted app."""
        return HOSTED_STATS_PATH if self.hosted else "/stats"

    @property
    def health_path(self) -> str:
        """Where a worker answers that it serves: /health, or HOSTED_HEALTH_PATH."""
        return health_path(self.app)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceConfig:
        """Read a spec's service section (unknown keys are ignored)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"the service config must be a mapping, not {type(data).__name__}")
        python_malloc = data.get("python_malloc", "pymalloc")
        if python_malloc not in ("pymalloc", "malloc"):
            raise ConfigError(f"python_malloc must be pymalloc or malloc, not {python_malloc!r}")
        body_timeout_s = data.get("body_timeout_s", BODY_TIMEOUT_S)
        if (
            isinstance(body_timeout_s, bool)
            or not isinstance(body_timeout_s, int | float)
            or not 0 < body_timeout_s <= 3600
        ):
            raise ConfigError(
                f"body_timeout_s must be a number of seconds above 0, at most 3600, "
                f"not {body_timeout_s!r}"
            )
        max_requests, jitter = _recycling(data)
        app, app_dir, env, interface = _hosted(data)
        blocks, block_bytes = _idle_probe(data.get("idle_probe"))
        return cls(
            churn=ChurnConfig.from_dict(data.get("churn", {})),
            python_malloc=python_malloc,
            body_timeout_s=float(body_timeout_s),
            max_requests=max_requests,
            max_requests_jitter=jitter,
            app=app,
            app_dir=app_dir,
            env=env,
            interface=interface,
            idle_probe_blocks=blocks,
            idle_probe_block_bytes=block_bytes,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def config_to_env(service_config: Mapping[str, Any]) -> str:
    """The value of CONFIG_ENV for a service section (checked first, so errors come early)."""
    ServiceConfig.from_dict(service_config)
    return json.dumps(dict(service_config), sort_keys=True, default=str)


def config_from_env(environ: Mapping[str, str] | None = None) -> ServiceConfig:
    """The configuration in CONFIG_ENV, or the defaults when it is not set."""
    text = (os.environ if environ is None else environ).get(CONFIG_ENV)
    if not text:
        return ServiceConfig()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{CONFIG_ENV} is not valid JSON: {exc}") from None
    return ServiceConfig.from_dict(data)
