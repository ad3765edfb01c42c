"""The kept-memory sentences follow their numbers: each flips when its numbers do."""

from __future__ import annotations

from bench.report.sections.kept import Kept, kept_sentences, ranking_without_lazy

MB = 1_000_000


def _kept(**over: object) -> Kept:
    base: dict = {
        "allocator": "glibc",
        "family": "glibc",
        "anon_settled": 900 * MB,
        "settled": {"live": 450 * MB, "free": 420 * MB, "lazy": 0, "unaccounted": 30 * MB},
    }
    return Kept(**(base | over))


def test_glibc_free_between_live_blocks_is_said_with_its_reason_only_when_largest() -> None:
    [text] = kept_sentences(_kept())
    assert text.startswith("glibc keeps 420 MB free inside the allocator beside 450 MB live")
    assert "shrink only from the top" in text
    small = _kept(settled={"live": 450 * MB, "free": 1 * MB, "lazy": 0, "unaccounted": 0})
    assert kept_sentences(small) == []
    lazier = _kept(settled={"live": 450 * MB, "free": 100 * MB, "lazy": 300 * MB, "unaccounted": 0})
    texts = kept_sentences(lazier)
    assert "shrink only from the top" not in texts[0]  # free is not where most of it sits
    assert texts[1].startswith("300 MB of glibc's memory was given back with MADV_FREE")


def test_jemalloc_timer_pages_either_fell_to_none_or_stayed_for_want_of_ticks() -> None:
    settled = {"live": 400 * MB, "free": 1 * MB, "timer": 0, "unaccounted": 0}
    fell = _kept(
        allocator="jemalloc",
        family="jemalloc",
        settled=settled,
        timer_series=[(0.0, 200 * MB), (10.0, 80 * MB), (28.0, 0)],
        timers={"dirty_decay_ms": 10000, "background_thread": False},
    )
    [text] = kept_sentences(fell)
    assert text == (
        "jemalloc's pages waiting on a timer fell from 200 MB to none within 28 s "
        "of idle: its 10 s decay."
    )
    stayed = _kept(
        allocator="jemalloc",
        family="jemalloc",
        settled=settled | {"timer": 150 * MB},
        timer_series=[(0.0, 200 * MB), (40.0, 150 * MB)],
        timers={"dirty_decay_ms": 10000, "background_thread": False},
    )
    [text] = kept_sentences(stayed)
    assert text.startswith("jemalloc still held 150 MB of pages waiting on its 10 s decay")
    assert "no background thread" in text
    with_thread = _kept(
        allocator="jemalloc",
        family="jemalloc",
        settled=settled,
        timer_series=[(0.0, 200 * MB), (40.0, 150 * MB)],
        timers={"dirty_decay_ms": 10000, "background_thread": True},
    )
    assert "no background thread" not in kept_sentences(with_thread)[0]


def test_a_large_unaccounted_share_is_said() -> None:
    off = _kept(settled={"live": 450 * MB, "free": 1 * MB, "unaccounted": 200 * MB})
    assert any("leave 22% of the anonymous memory" in s for s in kept_sentences(off))
    near = _kept(settled={"live": 450 * MB, "free": 1 * MB, "unaccounted": 80 * MB})
    assert kept_sentences(near) == []


def test_ranking_without_lazily_freed_pages_can_reorder() -> None:
    a = _kept(allocator="a", anon_settled=800 * MB, settled={"lazy": 0})
    b = _kept(allocator="b", anon_settled=900 * MB, settled={"lazy": 300 * MB})
    c = _kept(allocator="c", anon_settled=700 * MB, settled={})
    assert [r[0] for r in ranking_without_lazy([a, b, c])] == ["b", "a", "c"]
    assert ranking_without_lazy([b])[0] == ("b", 900 * MB, 600 * MB)


def _row(
    repeat: int,
    worker: str,
    mark: str | None,
    component: str,
    value: int | None,
    idle_t_s: float | None = None,
) -> dict:
    return {
        "allocator": "jemalloc",
        "repeat": repeat,
        "worker": worker,
        "mark": mark,
        "component": component,
        "bytes": value,
        "idle_t_s": idle_t_s,
        "source": "s",
    }


def test_kept_from_rows_sums_workers_and_takes_the_median_repeat() -> None:
    from bench.report.sections.kept import kept_from_rows, summed_series

    rows = []
    for repeat, scale in ((0, 1), (1, 3), (2, 2)):
        for worker in ("w1", "w2"):
            rows += [
                _row(repeat, worker, "settled", "anon", 100 * scale),
                _row(repeat, worker, "settled", "live", 60 * scale),
                _row(repeat, worker, "settled", "timer", 10 * scale),
            ]
        rows += [
            _row(repeat, "w1", None, "timer", 50, 0.5),
            _row(repeat, "w2", None, "timer", 40, 1.5),
            _row(repeat, "w1", None, "timer", 5 * scale, 2.5),
        ]
    rows.append(_row(1, "w2", "settled", "metadata", 3))  # one worker of one repeat only
    kept = kept_from_rows(rows, allocator="jemalloc", family="jemalloc")
    assert kept is not None
    assert kept.anon_settled == 400 and kept.settled["live"] == 240 and kept.settled["timer"] == 40
    assert kept.settled["metadata"] is None  # absent in a worker: no total
    assert kept.timer_series == [(1.5, 90), (2.5, 50)]  # repeat 2 (median), from both read
    assert summed_series([], "timer") == []
    assert kept_from_rows(rows, allocator="glibc", family="glibc") is None


def test_the_control_sentence_says_whose_retention_it_is() -> None:
    from bench.report.sections.kept import control_sentence

    service = _kept(settled={"live": 450 * MB, "free": 300 * MB})
    same = _kept(anon_settled=600 * MB, settled={"live": 350 * MB, "free": 200 * MB})
    text = control_sentence(service, same)
    assert text is not None and "33% of the service's settled memory" in text
    assert "the allocator's, with or without an interpreter" in text
    bare = _kept(anon_settled=600 * MB, settled={"live": 550 * MB, "free": 20 * MB})
    assert "follows from the interpreter's pattern" in (control_sentence(service, bare) or "")
    assert control_sentence(service, _kept(settled={"live": 1})) is None
