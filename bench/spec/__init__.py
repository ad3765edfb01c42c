"""Experiment specs: YAML files validated by Pydantic models.

A spec says which allocators to compare and what load to put on the service and the C++
control. `bench.spec.models` holds the models (every default and bound of the format),
`bench.spec.loading` reads a file into them and locates every problem (`file:line: field:
message`). Everything public is re-exported here: `from bench.spec import Spec, load_spec`.
"""

from bench.spec.loading import SpecError, SpecIssue, load_spec, parse_spec
from bench.spec.models import (
    BUILTIN_ALLOCATORS,
    ChurnSpec,
    ControlSpec,
    LibraryAllocator,
    MachineSpec,
    PayloadSpec,
    ServiceSpec,
    SourceAllocator,
    SourceSpec,
    Spec,
    VariantAllocator,
    usable_cores,
)

__all__ = [
    "BUILTIN_ALLOCATORS",
    "ChurnSpec",
    "ControlSpec",
    "LibraryAllocator",
    "MachineSpec",
    "PayloadSpec",
    "ServiceSpec",
    "SourceAllocator",
    "SourceSpec",
    "Spec",
    "SpecError",
    "SpecIssue",
    "VariantAllocator",
    "load_spec",
    "parse_spec",
    "usable_cores",
]
