"""bench.allocators.timers: which return timers wait for the program's own allocator calls."""

from __future__ import annotations

from bench.allocators.timers import Timer, waits_for_calls


def _t(family: str, setting: str, kind: str, value: str | None, seconds: float | None) -> Timer:
    return Timer(family, setting, kind, value, seconds, meaning="")


DECAY = _t("jemalloc", "opt.dirty_decay_ms", "timer", "10000 ms", 10.0)
MUZZY = _t("jemalloc", "opt.muzzy_decay_ms", "timer", "0 ms", 0.0)


def test_jemalloc_without_its_background_thread_waits_on_its_decay() -> None:
    off = _t("jemalloc", "opt.background_thread", "switch", "false", None)
    assert waits_for_calls([DECAY, MUZZY, off]) == DECAY


def test_jemalloc_with_its_background_thread_does_not_wait_for_calls() -> None:
    on = _t("jemalloc", "opt.background_thread", "switch", "true", None)
    assert waits_for_calls([DECAY, MUZZY, on]) is None


def test_mimalloc_waits_on_its_purge_delay_and_the_timerless_do_not_wait() -> None:
    purge = _t("mimalloc", "purge_delay", "timer", "1000 ms", 1.0)
    assert waits_for_calls([purge]) == purge
    assert waits_for_calls([_t("glibc", "M_TRIM_THRESHOLD", "none", None, None)]) is None
    assert waits_for_calls([_t("tcmalloc", "tcmalloc_release_rate", "pace", "1.0", None)]) is None
    never = _t("mimalloc", "purge_delay", "timer", "-1", None)  # never purges: nothing to wait on
    assert waits_for_calls([never]) is None
