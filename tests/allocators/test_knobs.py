"""A variant's settings: parsed as the libraries parse them, read back from the real libraries.

The parsing is checked against C itself where C does it (libc's strtol and strtoul through
ctypes) and by round trips; the read-back runs the real probe under each real allocator, a
correct setting verified and a misspelt or ignored one failing its variant with the reason.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from studyrun import ROOT

from bench.allocators import knobs, timers
from bench.allocators.registry import resolve
from bench.allocators.verification import verify
from bench.spec import VariantAllocator
from service.allocators.knobs import KNOBS_ENV
from service.allocators.mimalloc import MIMALLOC_V2_0_9_OPTIONS
from service.process.childenv import without_allocator_env

# --- parsing what was asked ----------------------------------------------------------------

_key = st.from_regex(r"[A-Za-z0-9_]{1,12}", fullmatch=True)
_value = st.text(st.characters(blacklist_characters=",", blacklist_categories=("Cs",)), max_size=8)


@given(st.lists(st.tuples(_key, _value), min_size=1, max_size=6))
def test_malloc_conf_pairs_read_back_as_written(pairs: list[tuple[str, str]]):
    text = ",".join(f"{k}:{v}" for k, v in pairs)
    assert knobs.parse_malloc_conf(text) == (pairs, None)


def test_jemalloc_stops_reading_a_malformed_malloc_conf_where_it_breaks():
    pairs, stopped = knobs.parse_malloc_conf("narenas:2,dirty decay:0,muzzy_decay_ms:0")
    assert pairs == [("narenas", "2")]
    assert stopped and "'dirty decay:0,muzzy_decay_ms:0'" in stopped
    assert knobs.parse_malloc_conf("narenas")[1] == (
        "jemalloc stops reading MALLOC_CONF at 'narenas' (a key without value)"
    )


_tunable = st.from_regex(r"glibc\.[a-z_]{1,8}\.[a-z_]{1,12}", fullmatch=True)


@given(st.lists(st.tuples(_tunable, st.from_regex(r"[0-9a-fx]{0,6}", fullmatch=True)), max_size=5))
def test_glibc_tunables_entries_read_back_as_written(entries: list[tuple[str, str]]):
    text = ":".join(f"{n}={v}" for n, v in entries)
    assert knobs.parse_glibc_tunables(text) == (entries, [])


def test_a_tunable_without_equals_is_skipped_as_glibc_skips_it():
    assert knobs.parse_glibc_tunables("glibc.malloc.arena_max:glibc.malloc.check=3") == (
        [("glibc.malloc.check", "3")],
        ["glibc.malloc.arena_max"],
    )


_LIBC = ctypes.CDLL(None)
_LIBC.strtoul.restype = ctypes.c_ulong
_LIBC.strtoul.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]
_LIBC.strtol.restype = ctypes.c_long
_LIBC.strtol.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int]


@given(st.text(alphabet=" +-0123456789abcdefxX", max_size=10), st.sampled_from([0, 10]))
def test_c_number_agrees_with_libc_strtol(text: str, base: int):
    raw = text.encode()
    buf = ctypes.create_string_buffer(raw)
    end = ctypes.c_char_p()
    want = _LIBC.strtol(buf, ctypes.byref(end), base)
    consumed = ctypes.cast(end, ctypes.c_void_p).value - ctypes.addressof(buf)
    number, rest = knobs.c_number(text, base)
    if -(2**63) <= (number or 0) < 2**63:  # C clamps beyond long; no setting goes there
        assert (number or 0) == want, text
        assert rest == text[consumed:], text


@pytest.mark.parametrize(
    ("text", "version", "kib", "value"),
    [
        ("0", "2.0.9", False, 0),
        ("on", "2.0.9", False, 1),
        ("E", "2.0.9", False, 1),  # 2.0.9 tests for a substring of "1;TRUE;YES;ON"
        ("E", "3.4.3", False, None),  # 3.x for equality: not a number, refused
        ("yes", "3.4.3", False, 1),
        ("off", "3.4.3", False, 0),
        ("250", "3.4.3", False, 250),
        ("-1", "3.4.3", False, -1),
        ("10ms", "3.4.3", False, None),
        ("64M", "3.4.3", True, 65536),
        ("2GiB", "3.4.3", True, 2 << 20),
        ("1000", "3.4.3", True, 1),  # bytes, rounded up to KiB
        ("1T", "3.4.3", True, 1 << 30),
        ("1T", "2.0.9", True, None),  # no T in 2.0.9
    ],
)
def test_mimalloc_values_are_read_as_each_version_reads_them(
    text: str, version: str, kib: bool, value: int | None
):
    assert knobs.mimalloc_value(text, version, kib=kib) == value


def test_each_variable_is_parsed_into_the_settings_it_asks_for():
    asked = knobs.asked_settings(
        {
            "MALLOC_CONF": "dirty_decay_ms:0,lg_tcache_max:10,slab_sizes:1-4096:1",
            "GLIBC_TUNABLES": "glibc.malloc.arena_max=2",
            "MALLOC_TRIM_THRESHOLD_": "131072",
            "mimalloc_purge_delay": "0",
            "TCMALLOC_RELEASE_RATE": "10",
            "TCMALLOC_TRANSFER_NUM_OBJ": "40",
            "TCMALLOC_RELEASE_RATES": "10",
            "MALLOC_ARENA_MAXX": "2",
            "PYTHONMALLOC": "malloc",
            "PATH": "/usr/bin",
            "LD_PRELOAD": "/x.so",
        }
    )
    got = [(a.variable, a.setting, a.value, a.read is not None) for a in asked]
    assert got == [
        ("MALLOC_CONF", "opt.dirty_decay_ms", "0", True),
        ("MALLOC_CONF", "opt.tcache_max", "10", True),
        ("MALLOC_CONF", "slab_sizes", "1-4096:1", False),
        ("GLIBC_TUNABLES", "glibc.malloc.arena_max", "2", True),
        ("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold", "131072", True),
        ("mimalloc_purge_delay", "mi_option_purge_delay", "0", True),
        ("TCMALLOC_RELEASE_RATE", "FLAGS_tcmalloc_release_rate", "10", True),
        ("TCMALLOC_TRANSFER_NUM_OBJ", "TCMALLOC_TRANSFER_NUM_OBJ", "40", False),
        ("TCMALLOC_RELEASE_RATES", "TCMALLOC_RELEASE_RATES", "10", False),
        ("MALLOC_ARENA_MAXX", "MALLOC_ARENA_MAXX", "2", False),
        ("PYTHONMALLOC", "cpython.object_allocator", "malloc", True),
    ]
    unverifiable = {a.variable for a in asked if a.unverifiable}
    refused = {a.variable for a in asked if a.refused}
    assert unverifiable == {"MALLOC_CONF", "TCMALLOC_TRANSFER_NUM_OBJ"}  # slab_sizes
    assert refused == {"TCMALLOC_RELEASE_RATES", "MALLOC_ARENA_MAXX"}


def test_the_probe_is_asked_only_what_can_be_read_and_answers_by_id():
    env = {"MALLOC_CONF": "slab_sizes:1-4096:1,dirty_decay_ms:0"}
    requests = json.loads(knobs.probe_env(env)[KNOBS_ENV])
    asked = [r for r in requests if not str(r["id"]).startswith(timers.REQUEST_PREFIX)]
    assert asked == [{"family": "jemalloc", "name": "opt.dirty_decay_ms", "id": 1}]
    # a stock allocator asks nothing of its own, but its return timers are always read
    stock = json.loads(knobs.probe_env({"PATH": "/bin"})[KNOBS_ENV])
    assert stock == timers.requests()
    assert {r["name"] for r in stock} >= {"opt.dirty_decay_ms", "purge_delay"}


# --- judging read-backs (the probe's answers written out) -----------------------------------


def _report(*readings: dict, version: str = "5.3.0") -> dict:
    return {"family": "jemalloc", "version": version, "readings": list(readings)}


def test_a_read_back_as_asked_is_verified_and_another_value_fails_with_both():
    asked = knobs.asked_settings({"MALLOC_CONF": "dirty_decay_ms:0"})
    ok = knobs.judge(asked, _report({"id": 0, "status": "read", "type": "signed", "value": "0"}))
    assert ok[0]["state"] == "verified" and ok[0]["read_back"] == "0"
    bad = knobs.judge(
        asked, _report({"id": 0, "status": "read", "type": "signed", "value": "10000"})
    )
    assert bad[0]["state"] == "mismatch"
    assert bad[0]["reason"] == (
        "MALLOC_CONF asked dirty_decay_ms:0 but the library reports 10000 (misspelt or ignored)"
    )
    assert knobs.failure_reason(bad) == bad[0]["reason"]
    assert knobs.failure_reason(ok) is None


def test_a_value_the_library_reads_otherwise_than_written_fails():
    asked = knobs.asked_settings({"MALLOC_ARENA_MAX": "2x"})
    reading = {"id": 0, "status": "read", "type": "unsigned", "value": "2", "range": [1, 9]}
    [entry] = knobs.judge(asked, _report(reading))
    assert entry["state"] == "mismatch" and "does not take as written" in entry["reason"]


def test_a_value_outside_glibcs_range_fails_even_when_it_reads_back():
    asked = knobs.asked_settings({"MALLOC_ARENA_MAX": "0"})
    reading = {"id": 0, "status": "read", "type": "unsigned", "value": "0", "range": [1, 9]}
    [entry] = knobs.judge(asked, _report(reading))
    assert entry["state"] == "mismatch" and "takes 1 to 9 only" in entry["reason"]


def test_an_effect_that_contradicts_the_read_back_fails():
    asked = knobs.asked_settings({"MALLOC_ARENA_MAX": "2"})
    effect = {"ok": False, "text": "5 arenas formed while 4 threads allocated at once"}
    reading = {"id": 0, "status": "read", "type": "unsigned", "value": "2", "effect": effect}
    [entry] = knobs.judge(asked, _report(reading))
    assert entry["state"] == "mismatch" and entry["reason"].endswith(effect["text"])


def test_without_a_read_back_a_setting_is_unverifiable_with_why():
    asked = knobs.asked_settings({"TCMALLOC_TRANSFER_NUM_OBJ": "40", "MALLOC_CONF": "narenas:2"})
    entries = knobs.judge(asked, None)
    assert [e["state"] for e in entries] == ["unverifiable", "unverifiable"]
    assert "neither exports nor reports" in entries[0]["reason"]
    assert entries[1]["reason"] == "the process reported no read-back"
    assert knobs.failure_reason(entries) is None


def test_merge_counts_processes_keeps_the_worst_state_and_every_read_back():
    asked = knobs.asked_settings({"MALLOC_CONF": "dirty_decay_ms:0"})
    good = knobs.judge(asked, _report({"id": 0, "status": "read", "type": "signed", "value": "0"}))
    bad = knobs.judge(asked, _report({"id": 0, "status": "read", "type": "signed", "value": "5"}))
    first = knobs.merge([good])
    assert first[0]["processes"] == 1 and first[0]["control"] == knobs.CONTROL_NOTE
    [entry] = knobs.merge([good, bad, good], first)
    assert entry["processes"] == 4
    assert entry["state"] == "mismatch" and entry["read_back"] == "0 | 5"
    assert knobs.merge([]) == []


# --- the real libraries ---------------------------------------------------------------------


def _variant(base: str, env: dict[str, str]) -> VariantAllocator:
    return VariantAllocator(name="probe", base=base, env=env)


@pytest.mark.parametrize(
    ("base", "env", "setting", "read_back"),
    [
        ("jemalloc", {"MALLOC_CONF": "dirty_decay_ms:0"}, "opt.dirty_decay_ms", "0"),
        ("jemalloc", {"MALLOC_CONF": "background_thread:true"}, "opt.background_thread", "true"),
        ("glibc", {"MALLOC_ARENA_MAX": "2"}, "glibc.malloc.arena_max", "2"),
        (
            "glibc",
            {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
            "glibc.malloc.trim_threshold",
            "131072",
        ),
        ("glibc", {"PYTHONMALLOC": "malloc"}, "cpython.object_allocator", "malloc"),
        ("tcmalloc", {"TCMALLOC_RELEASE_RATE": "10"}, "FLAGS_tcmalloc_release_rate", "10.0"),
        (
            "tcmalloc",
            {"TCMALLOC_MAX_TOTAL_THREAD_CACHE_BYTES": "67108864"},
            "tcmalloc.max_total_thread_cache_bytes",
            "67108864",
        ),
        ("mimalloc-v2", {"MIMALLOC_DECOMMIT_DELAY": "0"}, "mi_option_decommit_delay", "0"),
        ("mimalloc-v2", {"MIMALLOC_RESET_DELAY": "3"}, "mi_option_decommit_delay", "3"),
        ("mimalloc-v3", {"MIMALLOC_PURGE_DELAY": "0"}, "mi_option_purge_delay", "0"),
        ("mimalloc-v3", {"MIMALLOC_ARENA_RESERVE": "64MiB"}, "mi_option_arena_reserve", "65536"),
    ],
)
def test_a_setting_the_library_took_is_verified_by_reading_it_back(
    base: str, env: dict[str, str], setting: str, read_back: str
):
    check = verify(resolve(_variant(base, env)))
    assert check.ok, check.reason
    [entry] = check.knobs
    assert (entry["setting"], entry["read_back"], entry["state"]) == (
        setting,
        read_back,
        "verified",
    )
    assert entry["how"]


@pytest.mark.parametrize(
    ("base", "env", "because"),
    [
        ("jemalloc", {"MALLOC_CONF": "dirty_decay:0"}, "jemalloc has no setting opt.dirty_decay"),
        ("jemalloc", {"MALLOC_CONF": "dirty_decay_ms:zero"}, "does not take as written"),
        ("jemalloc", {"MALLOC_ARENA_MAX": "2"}, "malloc is served by jemalloc"),
        (
            "glibc",
            {"GLIBC_TUNABLES": "glibc.malloc.trim_treshold=131072"},
            "no tunable glibc.malloc.trim_treshold",
        ),
        ("glibc", {"MALLOC_CONF": "dirty_decay_ms:0"}, "malloc is served by glibc"),
        ("tcmalloc", {"TCMALLOC_RELEASE_RATES": "10"}, "reads no variable TCMALLOC_RELEASE_RATES"),
        ("tcmalloc", {"TCMALLOC_RELEASE_RATE": "fast"}, "does not take as written"),
        ("mimalloc-v2", {"MIMALLOC_PURGE_DELAY": "0"}, "mimalloc 2.0.9 has no option purge_delay"),
        ("mimalloc-v3", {"MIMALLOC_PURGE_DELAYS": "0"}, "has no option purge_delays"),
        ("mimalloc-v3", {"MIMALLOC_PURGE_DELAY": "soon"}, "does not take as written"),
    ],
)
def test_a_misspelt_or_ignored_setting_fails_verification_with_the_reason(
    base: str, env: dict[str, str], because: str
):
    check = verify(resolve(_variant(base, env)))
    assert not check.ok
    assert because in check.reason
    assert check.reason.startswith(next(iter(env)))  # names the variable that asked
    assert [e["state"] for e in check.knobs] == ["mismatch"]


def _probe(env: dict[str, str]) -> dict:
    """The probe's read-back in a fresh interpreter with exactly `env` on top of a clean
    environment."""
    out = subprocess.run(
        [sys.executable, "-m", "service.allocators.probe"],
        env={**without_allocator_env(os.environ), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)["knobs"]


def test_glibc_arena_max_shows_in_the_arenas_threads_make():
    asked = knobs.asked_settings({"MALLOC_ARENA_MAX": "2"})
    [entry] = knobs.judge(
        asked, _probe({"MALLOC_ARENA_MAX": "2", **knobs.probe_env({"MALLOC_ARENA_MAX": "2"})})
    )
    assert entry["state"] == "verified"
    assert entry["effect"].startswith("2 arenas formed while 4 threads")


def test_a_trim_threshold_glibc_never_got_fails_on_its_effect_even_at_zero():
    # "0" is what --list-tunables shows for an unset tunable too: only the effect tells them
    # apart (glibc fixes its mmap threshold once the trim threshold is set).
    request = knobs.probe_env({"MALLOC_TRIM_THRESHOLD_": "0"})
    asked = knobs.asked_settings({"MALLOC_TRIM_THRESHOLD_": "0"})
    [taken] = knobs.judge(asked, _probe({"MALLOC_TRIM_THRESHOLD_": "0", **request}))
    assert taken["state"] == "verified", taken["reason"]
    [missed] = knobs.judge(asked, _probe(request))  # asked, but not in the environment
    assert missed["state"] == "mismatch" and "still moved" in missed["reason"]


def test_mimalloc_2_0_9_option_table_matches_what_the_library_lists():
    lib = resolve("mimalloc-v2").library
    out = subprocess.run(
        ["/bin/true"],
        env={"LD_PRELOAD": str(lib), "MIMALLOC_VERBOSE": "1"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    listed = [line.split("'")[1] for line in out.stderr.splitlines() if "option '" in line]
    assert tuple(listed) == MIMALLOC_V2_0_9_OPTIONS
