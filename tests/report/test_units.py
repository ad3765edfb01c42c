"""Formatting: units always attached, rounding by magnitude, Markdown-safe text."""

from __future__ import annotations

from bench.report.units import (
    NOT_MEASURED,
    fmt_bytes_kb,
    fmt_duration,
    fmt_mb,
    fmt_mops,
    fmt_ms,
    fmt_pct,
    fmt_pct_at,
    fmt_ratio,
    fmt_seconds,
    join_names,
    md_safe,
    round_mb,
)


def test_mb_are_decimal_megabytes_rounded_by_size():
    assert fmt_mb(150_400_000) == "150 MB"
    assert fmt_mb(1_234_567_890) == "1,235 MB"
    assert fmt_mb(7_340_000) == "7.3 MB"
    assert round_mb(7_340_000) == 7.3


def test_missing_numbers_say_so():
    for f in (fmt_mb, fmt_ms, fmt_mops, fmt_ratio, fmt_pct, fmt_seconds, fmt_duration):
        assert f(None) == NOT_MEASURED
    assert fmt_mb(float("nan")) == NOT_MEASURED


def test_milliseconds_keep_two_significant_places_when_small():
    assert fmt_ms(0.634) == "0.63 ms"
    assert fmt_ms(4.06) == "4.1 ms"
    assert fmt_ms(44.4) == "44 ms"


def test_ratio_and_percent():
    assert fmt_ratio(1.12) == "1.12×"
    assert fmt_ratio(2.68) == "2.7×"
    assert fmt_ratio(12.4) == "12×"
    assert fmt_pct(0.523) == "52%"


def test_a_percentage_never_rounds_onto_the_edge_it_is_held_against():
    assert (fmt_pct_at(0.0532, 0.05), fmt_pct_at(0.0479, 0.05)) == ("5.3%", "4.8%")
    assert fmt_pct_at(-0.0532, 0.05) == "-5.3%"
    assert (fmt_pct_at(0.0449, 0.05), fmt_pct_at(0.13, 0.05)) == ("4%", "13%")
    assert fmt_pct_at(None, 0.05) == NOT_MEASURED


def test_throughput_in_millions():
    assert fmt_mops(44_000_000) == "44.0 million/s"
    assert fmt_mops(4_250_000) == "4.25 million/s"


def test_durations_and_spec_times():
    assert fmt_seconds(600) == "10 min"
    assert fmt_seconds(120) == "2 min"
    assert fmt_seconds(30) == "30 s"
    assert fmt_seconds(90) == "90 s"
    assert fmt_duration(800) == "13 min 20 s"
    assert fmt_duration(3840) == "1 h 04 min"


def test_buffer_sizes():
    assert fmt_bytes_kb(4000) == "4 KB"
    assert fmt_bytes_kb(65536) == "64 KiB"
    assert fmt_bytes_kb(1000 * 1000 + 1) == "1,000,001 bytes"


def test_md_safe_shows_markdown_punctuation_verbatim():
    out = md_safe("a_b *c* <d> [e](f)")
    assert "_" not in out and "*" not in out and "<" not in out and "[" not in out


def test_join_names():
    assert join_names([]) == ""
    assert join_names(["a"]) == "a"
    assert join_names(["a", "b"]) == "a and b"
    assert join_names(["a", "b", "c"]) == "a, b and c"


def test_md_safe_escapes_each_character_once():
    from bench.report.units import md_safe

    # the '#' of the entity for an apostrophe must not be escaped a second time
    assert md_safe("machine's") == "machine&#x27;s"
    assert md_safe("a & b") == "a &amp; b"
    assert md_safe("#1 *x*") == "&#35;1 &#42;x&#42;"
