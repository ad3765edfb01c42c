"""What a variant's environment asks of its allocator, and whether the allocator did it.

A setting in the environment proves nothing by itself: jemalloc ignores a misspelt
MALLOC_CONF pair with only a warning, mimalloc and gperftools ignore names they do not know,
glibc skips an unknown tunable and reads "2x" as 2, and a setting meant for another allocator
does nothing at all. So a variant is verified as its library is: `asked_settings` parses
what the environment asks (MALLOC_CONF pairs, GLIBC_TUNABLES entries and glibc's MALLOC_*
aliases, MIMALLOC_* options, TCMALLOC_* variables, PYTHONMALLOC), `probe_env` carries the
read-back requests into each process (service.allocators.knobs reads them there, from the
allocator itself), and `judge` compares what each process read back with what was asked,
by the rules the library itself parses the value with. `merge` folds the processes into
the manifest's record, one entry per setting:

    {"variable": "MALLOC_CONF", "asked_as": "dirty_decay_ms:0", "setting": "opt.dirty_decay_ms",
     "asked": "0", "read_back": "0", "state": "verified", "how": "jemalloc mallctl ...",
     "processes": 5, "reason": None, "control": "not checked in the control: ..."}

`state` is "verified" (read back as asked), "mismatch" (read back otherwise, or the library
has no such setting, or another allocator serves malloc: the variant fails with `reason`) or
"unverifiable" (the library offers no read-back; `reason` says why).

Its length (about 530 lines) is the five families' setting grammars side by side, each parsed
as its library parses it; `judge` compares across all of them by one rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.allocators import timers
from service.allocators.knobs import KNOBS_ENV

__all__ = [
    "CONTROL_NOTE",
    "GLIBC_ALIASES",
    "JEMALLOC_CONF_ONLY",
    "TCMALLOC_VARIABLES",
    "Asked",
    "asked_settings",
    "c_number",
    "failure_reason",
    "judge",
    "merge",
    "mimalloc_value",
    "parse_glibc_tunables",
    "parse_malloc_conf",
    "probe_env",
]

#: What the manifest says of the C++ control for every setting.
CONTROL_NOTE = (
    "not checked in the control: it runs the same library under the same environment, but "
    "the C++ program has no read-back"
)

#: glibc's environment aliases of its malloc tunables (elf/dl-tunables.list, glibc 2.26+).
GLIBC_ALIASES: dict[str, str] = {
    "MALLOC_ARENA_MAX": "glibc.malloc.arena_max",
    "MALLOC_ARENA_TEST": "glibc.malloc.arena_test",
    "MALLOC_CHECK_": "glibc.malloc.check",
    "MALLOC_MMAP_MAX_": "glibc.malloc.mmap_max",
    "MALLOC_MMAP_THRESHOLD_": "glibc.malloc.mmap_threshold",
    "MALLOC_PERTURB_": "glibc.malloc.perturb",
    "MALLOC_TOP_PAD_": "glibc.malloc.top_pad",
    "MALLOC_TRIM_THRESHOLD_": "glibc.malloc.trim_threshold",
}

#: MALLOC_CONF keys jemalloc 5.3 accepts but exposes no opt.* for (src/jemalloc.c against
#: src/ctl.c): read back by nothing.
JEMALLOC_CONF_ONLY = frozenset(
    {
        "bin_shards",
        "experimental_infallible_new",
        "hpa_hugification_threshold_ratio",
        "log",
        "narenas_ratio",
        "prof_log",
        "prof_unbias",
        "san_guard_large",
        "san_guard_small",
        "slab_sizes",
    }
)

# The TCMALLOC_* variables gperftools 2.10 reads (src/*.cc), and how each reads back: its
# exported flag variable (mangled in the library) or a numeric property; a string says why
# it cannot be read back.
TCMALLOC_VARIABLES: dict[str, tuple[str, str, str] | str] = {
    "TCMALLOC_RELEASE_RATE": ("flag", "tcmalloc_release_rate", "double"),
    "TCMALLOC_HEAP_LIMIT_MB": ("flag", "tcmalloc_heap_limit_mb", "int64"),
    "TCMALLOC_SAMPLE_PARAMETER": ("flag", "tcmalloc_sample_parameter", "int64"),
    "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": (
        "flag",
        "tcmalloc_large_alloc_report_threshold",
        "int64",
    ),
    "TCMALLOC_SKIP_SBRK": ("flag", "malloc_skip_sbrk", "bool"),
    "TCMALLOC_SKIP_MMAP": ("flag", "malloc_skip_mmap", "bool"),
    "TCMALLOC_DISABLE_MEMORY_RELEASE": ("flag", "malloc_disable_memory_release", "bool"),
    "TCMALLOC_DEVMEM_START": ("flag", "malloc_devmem_start", "int32"),
    "TCMALLOC_DEVMEM_LIMIT": ("flag", "malloc_devmem_limit", "int32"),
    "TCMALLOC_MEMFS_LIMIT_MB": ("flag", "memfs_malloc_limit_mb", "int64"),
    "TCMALLOC_MEMFS_ABORT_ON_FAIL": ("flag", "memfs_malloc_abort_on_fail", "bool"),
    "TCMALLOC_MEMFS_IGNORE_MMAP_FAIL": ("flag", "memfs_malloc_ignore_mmap_fail", "bool"),
    "TCMALLOC_MEMFS_MAP_PRIVATE": ("flag", "memfs_malloc_map_private", "bool"),
    "TCMALLOC_MEMFS_DISABLE_FALLBACK": ("flag", "memfs_malloc_disable_fallback", "bool"),
    "TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES": (
        "property",
        "tcmalloc.max_total_thread_cache_bytes",
        "int64",
    ),
    "TCMALLOC_AGGRESSIVE_DECOMMIT": ("property", "tcmalloc.aggressive_memory_decommit", "bool"),
    "TCMALLOC_MEMFS_MALLOC_PATH": "gperftools keeps it in a C++ string flag, not readable "
    "from outside C++",
    "TCMALLOC_TRANSFER_NUM_OBJ": "gperftools keeps it in FLAGS_tcmalloc_transfer_num_objects, "
    "which the library neither exports nor reports",
    "TCMALLOC_ENABLE_SIZED_DELETE": "gperftools reads it once at load and keeps no trace of it",
    "TCMALLOC_STACKTRACE_METHOD": "gperftools reads it once at load and keeps no trace of it",
    "TCMALLOC_STACKTRACE_METHOD_VERBOSE": "gperftools reads it once at load and keeps no trace "
    "of it",
}

# Variables some allocator build reads that these libraries do not (prefixed jemalloc builds,
# gperftools' full library): nothing here can say whether they took.
_FOREIGN_PREFIXES = ("JEMALLOC_", "_RJEM_", "HEAPPROFILE", "HEAPCHECK")
_STATE_RANK = {"verified": 0, "unverifiable": 1, "mismatch": 2}


@dataclass(frozen=True)
class Asked:
    """One setting a variable asks for.

    `asked_as` is the variable's text for it ("dirty_decay_ms:0" of a MALLOC_CONF, the whole
    value of MALLOC_ARENA_MAX); `value` the value alone. `read` is the request the probe
    answers (None when nothing can be read back: `unverifiable` says why, or `refused` says
    why the library cannot take the text at all).
    """

    variable: str
    asked_as: str
    family: str
    setting: str
    value: str
    read: dict[str, Any] | None = None
    unverifiable: str | None = None
    refused: str | None = None
    transform: str | None = None  # "pow2": jemalloc's lg_tcache_max sets tcache_max = 2^v


# --- parsing what was asked ----------------------------------------------------------------


def parse_malloc_conf(text: str) -> tuple[list[tuple[str, str]], str | None]:
    """The key:value pairs of a MALLOC_CONF as jemalloc's malloc_conf_next reads them, and
    where it stopped reading if it did (jemalloc drops the rest of a malformed string).

    A key is letters, digits and underscores up to ':'; a value runs to ',' or the end.
    """
    pairs: list[tuple[str, str]] = []
    rest = text
    while rest:
        m = re.match(r"[A-Za-z0-9_]+", rest)
        if m is None:
            return pairs, f"jemalloc stops reading MALLOC_CONF at {rest!r} (malformed)"
        key = m.group(0)
        after = rest[m.end() :]
        if not after:
            return pairs, f"jemalloc stops reading MALLOC_CONF at {rest!r} (a key without value)"
        if after[0] != ":":
            return pairs, f"jemalloc stops reading MALLOC_CONF at {rest!r} (malformed)"
        value, comma, rest = after[1:].partition(",")
        pairs.append((key, value))
        if comma and not rest:
            return pairs, "MALLOC_CONF ends with a comma (jemalloc warns, and reads the rest)"
    return pairs, None


def parse_glibc_tunables(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The name=value entries of a GLIBC_TUNABLES as glibc 2.36 reads them (':' between
    entries), and the pieces it skips for having no '='."""
    entries: list[tuple[str, str]] = []
    skipped: list[str] = []
    for piece in text.split(":"):
        name, equals, value = piece.partition("=")
        if equals:
            entries.append((name, value))
        elif piece:
            skipped.append(piece)
    return entries, skipped


def _jemalloc(variable: str, text: str) -> list[Asked]:
    pairs, stopped = parse_malloc_conf(text)
    asked = []
    for key, value in pairs:
        asked_as = f"{key}:{value}"
        if key == "lg_tcache_max":  # deprecated spelling of tcache_max, as a power of two
            read = {"family": "jemalloc", "name": "opt.tcache_max"}
            asked.append(
                Asked(
                    variable, asked_as, "jemalloc", "opt.tcache_max", value, read, transform="pow2"
                )
            )
        elif key in JEMALLOC_CONF_ONLY:
            why = f"jemalloc 5.3 takes {key} but exposes no opt.{key} to read it back"
            asked.append(Asked(variable, asked_as, "jemalloc", key, value, unverifiable=why))
        else:
            read = {"family": "jemalloc", "name": f"opt.{key}"}
            asked.append(Asked(variable, asked_as, "jemalloc", f"opt.{key}", value, read))
    if stopped and "comma" not in stopped:
        asked.append(Asked(variable, text, "jemalloc", "MALLOC_CONF", text, refused=stopped))
    return asked


def _glibc(variable: str, text: str) -> list[Asked]:
    if variable in GLIBC_ALIASES:
        name = GLIBC_ALIASES[variable]
        return [Asked(variable, text, "glibc", name, text, {"family": "glibc", "name": name})]
    entries, skipped = parse_glibc_tunables(text)
    asked = [
        Asked(variable, f"{n}={v}", "glibc", n, v, {"family": "glibc", "name": n})
        for n, v in entries
    ]
    for piece in skipped:
        why = f"glibc skips {piece!r}: a tunable is written name=value"
        asked.append(Asked(variable, piece, "glibc", piece, "", refused=why))
    return asked


def _tcmalloc(variable: str, text: str) -> Asked:
    how = TCMALLOC_VARIABLES.get(variable)
    if how is None:
        why = f"gperftools 2.10 reads no variable {variable} (misspelt or ignored)"
        return Asked(variable, text, "tcmalloc", variable, text, refused=why)
    if isinstance(how, str):
        return Asked(variable, text, "tcmalloc", variable, text, unverifiable=how)
    read, name, kind = how
    setting = name if read == "property" else f"FLAGS_{name}"
    request = {"family": "tcmalloc", "read": read, "name": name, "type": kind}
    return Asked(variable, text, "tcmalloc", setting, text, request)


def asked_settings(env: Mapping[str, str]) -> list[Asked]:
    """Every allocator setting an environment asks for, in the environment's order.

    Variables that no allocator reads (PATH, ...) are not settings and are left out;
    LD_PRELOAD is the allocator itself, proven apart.
    """
    asked: list[Asked] = []
    for variable, text in env.items():
        upper = variable.upper()
        if variable == "MALLOC_CONF":
            asked += _jemalloc(variable, text)
        elif variable == "GLIBC_TUNABLES" or variable in GLIBC_ALIASES:
            asked += _glibc(variable, text)
        elif upper.startswith("MIMALLOC_"):  # mimalloc matches its names in any case
            name = upper.removeprefix("MIMALLOC_").lower()
            request = {"family": "mimalloc", "name": name}
            asked.append(Asked(variable, text, "mimalloc", f"mi_option_{name}", text, request))
        elif variable.startswith("TCMALLOC_"):
            asked.append(_tcmalloc(variable, text))
        elif variable == "PYTHONMALLOC":
            request = {"family": "python", "name": "pymalloc"}
            asked.append(Asked(variable, text, "python", "cpython.object_allocator", text, request))
        elif variable.startswith("MALLOC_"):
            why = (
                f"no allocator studied here reads {variable} (glibc reads only the "
                "MALLOC_*_ aliases of its tunables): misspelt or ignored"
            )
            asked.append(Asked(variable, text, "glibc", variable, text, refused=why))
        elif variable.startswith(_FOREIGN_PREFIXES):
            why = f"{variable} is read by other builds than these libraries, if any"
            asked.append(Asked(variable, text, "other", variable, text, unverifiable=why))
    return asked


def probe_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variable that tells each process what to read back: the variant's settings (ids
    are their places in `asked_settings`) and the allocator's return timers
    (bench.allocators.timers), which every run records, stock allocators' too."""
    requests = [
        {**a.read, "id": i} for i, a in enumerate(asked_settings(env)) if a.read is not None
    ]
    return {KNOBS_ENV: json.dumps([*requests, *timers.requests()], separators=(",", ":"))}


# --- C's number parsing, as the libraries use it -------------------------------------------

_SPACE = " \t\n\v\f\r"


def c_number(text: str, base: int = 10) -> tuple[int | None, str]:
    """strtol/strtoul of C: the number at the start of `text` (after white space, with an
    optional sign; base 0 reads 0x as hex and a leading 0 as octal) and the text after it.
    The number is None when no digit is there (C then returns 0 and consumes nothing)."""
    s = text.lstrip(_SPACE)
    sign = 1
    if s[:1] in "+-" and s[:1]:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if base in (0, 16) and s[:2].lower() == "0x" and s[2:3] and s[2].lower() in "0123456789abcdef":
        base, s = 16, s[2:]
    elif base == 0:
        base = 8 if s[:1] == "0" else 10
    digits = "0123456789abcdef"[:base]
    end = 0
    while end < len(s) and s[end].lower() in digits:
        end += 1
    if end == 0:
        return None, text
    return sign * int(s[:end], base), s[end:]


def _c_double(text: str) -> tuple[float | None, str]:
    """strtod: the number at the start of `text` and the text after it."""
    m = re.match(
        r"[ \t\n\v\f\r]*([+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|"
        r"inf(?:inity)?|nan))",
        text,
        re.IGNORECASE,
    )
    if m is None:
        return None, text
    return float(m.group(1)), text[m.end() :]


def mimalloc_value(text: str, version: str | None, *, kib: bool) -> int | None:
    """The value mimalloc takes from an environment value, or None when it refuses it and
    keeps the default (mi_option_init of 2.0.9 and of 3.x).

    Both read 1/TRUE/YES/ON and 0/FALSE/NO/OFF in any case; 2.0.9 tests that the value is a
    substring of "1;TRUE;YES;ON" (so "E" is 1), 3.x that it equals one. Otherwise a decimal
    number that must fill the value; options kept in KiB take a K/M/G(/T in 3.x) suffix,
    optionally followed by B or IB, and a bare number there is bytes, rounded up to KiB.
    """
    major = (version or "3").split(".", 1)[0]
    buf = text[:64].upper()
    if major in ("1", "2"):
        if buf == "" or buf in "1;TRUE;YES;ON":
            return 1
        if buf in "0;FALSE;NO;OFF":
            return 0
    else:
        if buf in ("", "1", "TRUE", "YES", "ON"):
            return 1
        if buf in ("0", "FALSE", "NO", "OFF"):
            return 0
    value, end = c_number(buf, 10)
    if value is None:
        return None
    if kib:
        size = value if major in ("1", "2") else max(value, 0)
        scale = {"K": 1, "M": 1 << 10, "G": 1 << 20}
        if major not in ("1", "2"):
            scale["T"] = 1 << 30
        if end[:1] in scale:
            size *= scale[end[:1]]
            end = end[1:]
        else:
            size = (size + 1023) // 1024
        if end[:2] == "IB":
            end = end[2:]
        elif end[:1] == "B":
            end = end[1:]
        value = size
    return value if end == "" else None


# --- judging one process -------------------------------------------------------------------


def _expected(asked: Asked, reading: Mapping[str, Any], version: str | None) -> tuple[Any, Any]:
    """(what the library should hold, what it holds) in comparable form; the first is None
    when the library cannot take the text as the number or word it needs."""
    kind, text, held = reading.get("type"), asked.value, str(reading.get("value"))
    if asked.family == "jemalloc":
        if kind == "bool":
            return (text if text in ("true", "false") else None), held
        if kind in ("signed", "unsigned"):
            number, rest = c_number(text, 0)
            if number is None or rest:
                return None, int(held)
            if asked.transform == "pow2":
                number = 1 << number if 0 <= number < 64 else None
            return number, int(held)
        if kind == "fixed":
            number2, rest = _c_double(text)
            return (None if number2 is None or rest else round(number2, 4)), round(float(held), 4)
        return text, held
    if asked.family == "mimalloc":
        return mimalloc_value(text, version, kib=kind == "kib"), int(held)
    if asked.family == "tcmalloc":
        if kind == "bool":
            word = text.strip().lower()
            takes = text[:1] in ("t", "T", "y", "Y", "1", "")
            clean = word in ("", "1", "0", "true", "false", "yes", "no", "t", "f", "y", "n")
            return (takes if clean else None), held in ("true", "1")
        if kind == "double":
            number2, rest = _c_double(text)
            return (None if number2 is None or rest.strip() else number2), float(held)
        number, rest = c_number(text, 10)
        return (None if number is None or rest.strip() else number), int(held)
    if asked.family == "glibc":
        number, rest = c_number(text, 0)
        if number is not None and number < 0:
            number += 1 << 64  # strtoul wraps a negative number
        return (None if number is None or rest else number), int(held)
    if asked.family == "python":
        wants = {"malloc": "malloc", "malloc_debug": "malloc"}.get(text)
        if text in ("pymalloc", "pymalloc_debug", "debug", "default"):
            wants = "pymalloc"
        return wants, held
    return text, held


def _judge_one(
    asked: Asked, reading: Mapping[str, Any] | None, version: str | None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "variable": asked.variable,
        "asked_as": asked.asked_as,
        "setting": asked.setting,
        "asked": asked.value,
        "read_back": None,
        "state": "unverifiable",
        "how": None,
        "reason": None,
    }
    said = f"{asked.variable} asked {asked.asked_as}"
    if asked.refused:
        return {**entry, "state": "mismatch", "reason": f"{said} but {asked.refused}"}
    if asked.unverifiable:
        return {**entry, "reason": asked.unverifiable}
    if reading is None:
        return {**entry, "reason": "the process reported no read-back"}
    entry["how"] = reading.get("how")
    if reading.get("setting") and asked.family == "mimalloc":
        entry["setting"] = f"mi_option_{reading['setting']}"  # a legacy name's option
    status = reading.get("status")
    if status == "absent":
        why = f"{said} but {reading.get('why')} (misspelt or ignored)"
        return {**entry, "state": "mismatch", "reason": why}
    if status == "not-served":
        return {**entry, "state": "mismatch", "reason": f"{said} but {reading.get('why')}"}
    if status != "read":
        return {**entry, "reason": str(reading.get("why") or "the read-back failed")}
    entry["read_back"] = str(reading.get("value"))
    try:
        wanted, held = _expected(asked, reading, version)
    except ValueError:
        wanted, held = None, reading.get("value")
    if wanted is None:
        why = (
            f"{said}, which the library does not take as written (it reports {entry['read_back']})"
        )
        return {**entry, "state": "mismatch", "reason": why}
    low_high = reading.get("range")
    if low_high and asked.family == "glibc" and not low_high[0] <= wanted <= low_high[1]:
        why = f"{said} but glibc takes {low_high[0]} to {low_high[1]} only (ignored)"
        return {**entry, "state": "mismatch", "reason": why}
    if wanted != held:
        why = f"{said} but the library reports {entry['read_back']} (misspelt or ignored)"
        return {**entry, "state": "mismatch", "reason": why}
    effect = reading.get("effect")
    if isinstance(effect, Mapping):
        entry["effect"] = effect.get("text")
        if not effect.get("ok"):
            why = f"{said}: the library reports {entry['read_back']} but {effect.get('text')}"
            return {**entry, "state": "mismatch", "reason": why}
    return {**entry, "state": "verified"}


def judge(asked: list[Asked], report: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Each asked setting judged against one process's read-back report (service.allocators.knobs's
    `read_knobs`; None when the process gave none)."""
    by_id = {}
    version = None
    if report:
        by_id = {r.get("id"): r for r in report.get("readings", [])}
        version = report.get("version")
    out = []
    for i, a in enumerate(asked):
        reading = by_id.get(i) if report and a.read is not None else None
        out.append(_judge_one(a, reading, version))
    return out


# --- many processes, one record ------------------------------------------------------------


def merge(
    per_process: Iterable[list[dict[str, Any]]], previous: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """One entry per setting over every process judged (and a previous record): the worst
    state, every distinct read-back, how many processes read it."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    for entry in previous or []:
        key = (entry["variable"], entry["asked_as"])
        merged[key] = dict(entry)
        order.append(key)
    for results in per_process:
        for result in results:
            key = (result["variable"], result["asked_as"])
            if key not in merged:
                merged[key] = {**result, "processes": 1, "control": CONTROL_NOTE}
                order.append(key)
                continue
            into = merged[key]
            into["processes"] = int(into.get("processes") or 0) + 1
            seen = [v for v in str(into.get("read_back") or "").split(" | ") if v]
            if result["read_back"] is not None and result["read_back"] not in seen:
                into["read_back"] = " | ".join([*seen, result["read_back"]])
            if _STATE_RANK[result["state"]] > _STATE_RANK[into["state"]]:
                into["state"], into["reason"] = result["state"], result["reason"]
            for field in ("how", "setting", "effect"):
                if into.get(field) is None and result.get(field) is not None:
                    into[field] = result[field]
    return [merged[key] for key in order]


def failure_reason(results: Iterable[Mapping[str, Any]]) -> str | None:
    """Why a variant fails: every setting that did not read back as asked (None if all did)."""
    reasons = [str(r["reason"]) for r in results if r["state"] == "mismatch"]
    return "; ".join(dict.fromkeys(reasons)) or None
