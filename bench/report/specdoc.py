"""The spec format as tables, generated from the Pydantic models (bench.spec).

Keys, types, constraints and defaults come from Spec.model_json_schema() and a minimal
spec's resolved values, so the page cannot drift from the code. Where a field has no
description in the models, a short meaning is supplied here.
"""

from __future__ import annotations

import json
from typing import Any

from bench.report.datatable import Cell, Column, html_table
from bench.report.units import md_safe

__all__ = ["spec_keys_table", "allocator_forms_table"]

#: Meanings for fields whose model carries no description.
_MEANINGS = {
    "name": "study name: [a-z0-9-], names the results folder and the article page",
    "title": "the article's title",
    "description": "a sentence or two shown under the title",
    "allocators": "allocators to compare, in order (a name, or a mapping: see below)",
    "repeats": "times each allocator runs the service experiment",
    "service": "the Python service experiment",
    "control": "the bare C++ control",
    "machine": "which confounds the runner may set",
    "service.workers": "uvicorn worker processes",
    "service.python_malloc": "pymalloc (CPython's small-object pools) or malloc for every object",
    "service.warmup_s": "seconds of light load before measuring",
    "service.load_s": "seconds of load at the full rate",
    "service.idle_s": "seconds of idle after the load (then a forced reclaim where the machine "
    "offers one: cgroup v2)",
    "service.sample_interval_s": "seconds between memory samples",
    "service.request_timeout_s": "a request slower than this counts as an error",
    "service.mix": "relative weights of the endpoints churn, json and xml",
    "service.churn": "the fragmentation engine behind /churn",
    "service.payload": "the JSON and XML documents sent to /json and /xml",
}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref") or next((x.get("$ref") for x in node.get("allOf", [])), None)
    if ref:
        return schema["$defs"][ref.split("/")[-1]]
    return node


def _type(node: dict[str, Any]) -> str:
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " | ".join(_type(x) for x in node[key] if x.get("type") != "null") + (
                " | null" if any(x.get("type") == "null" for x in node[key]) else ""
            )
    t = node.get("type", "mapping")
    if t == "array":
        return "list"
    if t == "object":
        names = node.get("propertyNames", {}).get("enum")
        return f"mapping of {', '.join(names)}" if names else "mapping"
    return {
        "number": "number",
        "integer": "integer",
        "string": "text",
        "boolean": "true | false",
    }.get(t, t)


def _limits(node: dict[str, Any]) -> str:
    parts = []
    for key, sym in (
        ("exclusiveMinimum", ">"),
        ("minimum", "≥"),
        ("exclusiveMaximum", "<"),
        ("maximum", "≤"),
    ):
        if key in node:
            parts.append(f"{sym} {node[key]:g}")
    if "pattern" in node:
        parts.append(f"matches {node['pattern']}")
    return ", ".join(parts)


def _lookup(values: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return None
        values = values[part]
    return values


def _rows(
    schema: dict[str, Any],
    model: dict[str, Any],
    prefix: str,
    required: set[str],
    defaults: dict[str, Any],
    out: list[list[Any]],
) -> None:
    for key, raw in model.get("properties", {}).items():
        dotted = f"{prefix}{key}"
        node = _resolve(schema, raw)
        nested = node.get("type") == "object" and "properties" in node
        default = (
            "(required)"
            if key in required and not prefix
            else ("(see below)" if nested else json.dumps(_lookup(defaults, dotted)))
        )
        meaning = raw.get("description") or node.get("description") if not nested else None
        meaning = meaning or _MEANINGS.get(dotted, "")
        out.append(
            [
                Cell(f"<code>{md_safe(dotted)}</code>", html=True),
                _type(node),
                default,
                meaning + (f" ({_limits(raw)})" if _limits(raw) else ""),
            ]
        )
        if nested:
            _rows(schema, node, dotted + ".", set(node.get("required", [])), defaults, out)


def spec_keys_table() -> str:
    """Every key of a spec with its type, default and meaning."""
    from bench.spec import Spec

    schema = Spec.model_json_schema()
    minimal = Spec(name="x", title="x", allocators=["glibc"]).model_dump(mode="json")
    rows: list[list[Any]] = []
    _rows(schema, schema, "", set(schema.get("required", [])), minimal, rows)
    return html_table(
        [Column("key"), Column("type"), Column("default"), Column("meaning")],
        rows,
        table_id="spec-keys",
    )


def allocator_forms_table() -> str:
    """The four ways to name an allocator in a spec's allocators list."""
    from bench.spec import BUILTIN_ALLOCATORS, Spec

    schema = Spec.model_json_schema()
    rows: list[list[Any]] = [
        ["a name", ", ".join(BUILTIN_ALLOCATORS), "a built-in allocator, resolved by allocstudy"]
    ]
    for title in ("VariantAllocator", "LibraryAllocator", "SourceAllocator"):
        model = schema["$defs"][title]
        keys = ", ".join(
            f"{k}{'' if k in model.get('required', []) else ' (optional)'}"
            for k in model["properties"]
        )
        rows.append(
            [
                f"a mapping with {next(iter(model['required'][1:]), 'name')}",
                keys,
                model.get("description", ""),
            ]
        )
    return html_table(
        [Column("form"), Column("keys"), Column("meaning")], rows, table_id="allocator-forms"
    )
