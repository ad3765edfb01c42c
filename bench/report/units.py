"""Numbers as the article prints them: units always attached, rounding chosen by magnitude.

MB means 10^6 bytes, as in the original study; the article says so once. Every formatter
takes a plain float and returns text, so the same rounding is used by values, prose, charts
and tables alike (a number never appears twice with two roundings).
"""

from __future__ import annotations

import html
import math

__all__ = [
    "MB",
    "NOT_MEASURED",
    "fmt_bytes_kb",
    "fmt_count",
    "fmt_duration",
    "fmt_given_back",
    "fmt_mb",
    "fmt_mops",
    "fmt_mops_cpu",
    "fmt_ms",
    "fmt_pct",
    "fmt_ratio",
    "fmt_seconds",
    "fmt_share",
    "join_names",
    "md_safe",
    "round_mb",
]

#: Bytes in a megabyte as this article counts them (decimal, as the original study did).
MB = 1_000_000

NOT_MEASURED = "not measured"


def _finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def round_mb(nbytes: float) -> float:
    """Megabytes rounded the way fmt_mb prints them (tests compare against this)."""
    mb = nbytes / MB
    return round(mb, 1) if abs(mb) < 10 else float(round(mb))


def fmt_mb(nbytes: float | None) -> str:
    """Bytes as MB: one decimal below 10 MB, whole MB above, thousands separated."""
    if not _finite(nbytes):
        return NOT_MEASURED
    mb = round_mb(float(nbytes))  # type: ignore[arg-type]
    return f"{mb:,.1f} MB" if abs(mb) < 10 else f"{mb:,.0f} MB"


def fmt_bytes_kb(nbytes: int) -> str:
    """A buffer size: KB (10^3) for the sizes a spec names; exact bytes when not whole KB."""
    if nbytes % 1000 == 0:
        return f"{nbytes // 1000:,} KB"
    if nbytes % 1024 == 0:
        return f"{nbytes // 1024:,} KiB"
    return f"{nbytes:,} bytes"


def fmt_ms(ms: float | None) -> str:
    """Milliseconds: two decimals below 1 ms, one below 10 ms, whole above."""
    if not _finite(ms):
        return NOT_MEASURED
    x = float(ms)  # type: ignore[arg-type]
    if abs(x) < 1:
        return f"{x:.2f} ms"
    if abs(x) < 10:
        return f"{x:.1f} ms"
    return f"{x:,.0f} ms"


def fmt_mops(per_s: float | None) -> str:
    """Operations per second in millions, the unit of the original's control chart."""
    if not _finite(per_s):
        return NOT_MEASURED
    m = float(per_s) / 1e6  # type: ignore[arg-type]
    if abs(m) < 10:
        return f"{m:.2f} million/s"
    return f"{m:,.1f} million/s"


def fmt_mops_cpu(per_cpu_s: float | None) -> str:
    """Operations per CPU-second in millions (the control's throughput that leaves out waiting)."""
    text = fmt_mops(per_cpu_s)
    return text if text == NOT_MEASURED else text.replace("/s", " per CPU-second")


def fmt_ratio(x: float | None) -> str:
    """A ratio of two like quantities, e.g. '2.3×'; '1.0×' means the same."""
    if not _finite(x):
        return NOT_MEASURED
    v = float(x)  # type: ignore[arg-type]
    return f"{v:.2f}×" if v < 1.995 else f"{v:.1f}×" if v < 10 else f"{v:,.0f}×"


def fmt_pct(fraction: float | None) -> str:
    """A fraction as a whole percentage ('0.123' → '12%')."""
    if not _finite(fraction):
        return NOT_MEASURED
    text = f"{float(fraction) * 100:.0f}"  # type: ignore[arg-type]
    return "0%" if text == "-0" else f"{text}%"


def fmt_pct_at(fraction: float | None, edge: float) -> str:
    """A whole percentage, but with one decimal when it would round onto `edge` (a fraction
    too): a figure held against a 5% rule must not print as 5% on either side of it, so 5.3%
    and 4.8% stay apart."""
    if not _finite(fraction):
        return NOT_MEASURED
    whole = fmt_pct(fraction)
    if whole.lstrip("-") != fmt_pct(edge):
        return whole
    return f"{float(fraction) * 100:.1f}%"  # type: ignore[arg-type]


def fmt_given_back(fraction: float | None) -> str:
    """The share of its peak an allocator gave back; "none" when settled is at or above peak
    (memory that grew during idle gave nothing back, whatever the sign of the ratio)."""
    if not _finite(fraction):
        return NOT_MEASURED
    return fmt_pct(fraction) if float(fraction) > 0 else "none"  # type: ignore[arg-type]


def fmt_share(fraction: float | None) -> str:
    """A share that may be small: a whole percentage, or one decimal below 10%
    (a long-lived share of 0.6% must not print as 1%)."""
    if not _finite(fraction):
        return NOT_MEASURED
    pct = float(fraction) * 100  # type: ignore[arg-type]
    return f"{pct:.1f}%" if 0 < abs(pct) < 10 and round(pct, 1) != round(pct) else f"{pct:.0f}%"


def fmt_count(n: float | None) -> str:
    """A count with thousands separators."""
    if not _finite(n):
        return NOT_MEASURED
    return f"{round(float(n)):,}"  # type: ignore[arg-type]


def fmt_seconds(s: float | None) -> str:
    """A duration a spec names: seconds up to two minutes, whole minutes beyond when exact."""
    if not _finite(s):
        return NOT_MEASURED
    x = float(s)  # type: ignore[arg-type]
    if x >= 120 and x % 60 == 0:
        return f"{x / 60:.0f} min"
    return f"{x:g} s"


def fmt_duration(s: float | None) -> str:
    """An elapsed time ('1 h 04 min', '13 min 20 s', '42 s')."""
    if not _finite(s):
        return NOT_MEASURED
    total = round(float(s))  # type: ignore[arg-type]
    h, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    if h:
        return f"{h} h {m:02d} min"
    if m:
        return f"{m} min {sec:02d} s" if sec else f"{m} min"
    return f"{sec} s"


_MD_SPECIAL = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+!|~"}
_MD_SPECIAL.update({c: html.escape(c, quote=True) for c in "&<>\"'"})


def md_safe(text: object) -> str:
    """Text that Markdown shows verbatim: HTML-escaped, Markdown punctuation as entities.

    One pass, character by character, so the '#' of an entity made here is never escaped again.
    """
    return "".join(_MD_SPECIAL.get(c, c) for c in str(text))


def join_names(names: list[str] | tuple[str, ...], conj: str = "and") -> str:
    """'a', 'a and b', 'a, b and c' — the list form used by every sentence."""
    names = list(names)
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} {conj} {names[-1]}"
