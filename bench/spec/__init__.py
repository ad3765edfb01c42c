"""Experiment specs: YAML files validated by Pydantic models (see bench.spec.models)."""

from bench.spec.models import *  # noqa: F403
from bench.spec.models import __all__  # noqa: F401
