"""The stamp reader shared by the latest and articles caches (scorer/api/stamp.py), and
the page cache of /v1/articles: one read per wave of requests, never older than the
request."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy import exc as sa_exc

from scorer.api.articles import Pages
from scorer.api.stamp import SharedRead, StampReader
from scorer.storage.outage import classify
from scorer.storage.tables import Article, ArticleTicker, ScoreEvent
from tests.helpers.outage import outage
from tests.helpers.score_data import event

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _commit_scores(engine: Engine, ids: range) -> None:
    """One transaction: an article, its tag and its score event per id (event id = id)."""
    at = T0 + timedelta(seconds=ids.start)
    with engine.begin() as conn:
        conn.execute(
            insert(Article),
            [
                {
                    "id": i,
                    "dedup_key": f"k{i}",
                    "title": f"story {i}",
                    "source": "Test Wire",
                    "published_at": at,
                    "seen_at": at,
                }
                for i in ids
            ],
        )
        conn.execute(insert(ArticleTicker), [{"article_id": i, "ticker": "AAPL"} for i in ids])
        conn.execute(
            insert(ScoreEvent),
            [{"id": i, **event(i, "AAPL", 0.5, at, at, "r1")} for i in ids],
        )


@pytest.fixture
def stamps(engine: Engine) -> Iterator[StampReader]:
    reader = StampReader(engine)
    yield reader
    reader.close()


def test_the_stamp_is_the_newest_score_event_id(engine: Engine, stamps: StampReader) -> None:
    assert stamps.read() is None
    _commit_scores(engine, range(1, 4))
    assert stamps.read() == 3
    _commit_scores(engine, range(4, 5))
    assert stamps.read() == 4  # the kept connection reads in autocommit: no old snapshot


def test_threads_sharing_the_reader_never_get_a_stamp_older_than_a_finished_commit(
    engine: Engine, stamps: StampReader
) -> None:
    committed = 0  # the newest id whose commit has returned
    stop = threading.Event()
    stale: list[tuple[int, int]] = []
    reads = 0

    def write() -> None:
        nonlocal committed
        for start in range(1, 400, 4):
            _commit_scores(engine, range(start, start + 4))
            committed = start + 3
        stop.set()

    def poll() -> None:
        nonlocal reads
        while not stop.is_set():
            floor = committed  # finished before this read was asked for
            got = stamps.read()
            reads += 1
            if (got or 0) < floor:
                stale.append((got, floor))

    threads = [threading.Thread(target=write)] + [threading.Thread(target=poll) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert reads > 0 and stale == []
    assert stamps.read() == 400


def test_callers_arriving_during_a_read_wait_for_the_next_one_and_share_it() -> None:
    began, release = threading.Event(), threading.Event()
    values = iter([1, 2])

    def read() -> int:
        began.set()
        assert release.wait(timeout=10)
        return next(values)

    shared = SharedRead(read)
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(shared()))
    first.start()
    assert began.wait(timeout=10)
    began.clear()
    # These arrive while read 1 is under way: read 1 may miss what they must see.
    late = [threading.Thread(target=lambda: results.append(shared())) for _ in range(5)]
    for thread in late:
        thread.start()
    release.set()
    for thread in [first, *late]:
        thread.join(timeout=10)
    assert sorted(results) == [1, 2, 2, 2, 2, 2]
    assert shared.reads == 2  # six callers, two reads


def test_a_failed_read_fails_its_waiters_and_the_next_call_reads_again() -> None:
    calls = 0

    def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("down")
        return 7

    shared = SharedRead(read)
    with pytest.raises(OSError):
        shared()
    assert shared() == 7 and calls == 2


def test_an_outage_is_a_database_error_the_api_can_classify_and_reading_recovers(
    database_url: str, engine: Engine, stamps: StampReader
) -> None:
    _commit_scores(engine, range(1, 2))
    assert stamps.read() == 1
    with outage(database_url, engine):
        with pytest.raises(sa_exc.DBAPIError) as caught:
            stamps.read()
        assert classify(caught.value) is not None
    assert stamps.read() == 1  # a new connection, by itself


class _Stamps:
    def __init__(self) -> None:
        self.value = 1

    def read(self) -> int:
        return self.value


def test_a_page_is_rendered_again_when_the_stamp_moves_or_after_max_age() -> None:
    now = 100.0
    stamps, renders = _Stamps(), []
    pages = Pages(stamps, max_age=2.0, clock=lambda: now)  # type: ignore[arg-type]

    def render() -> str:
        renders.append(1)
        return f'{{"page":{len(renders)}}}'

    first = pages.get(("k",), render)
    assert pages.get(("k",), render) == first and len(renders) == 1
    assert pages.get(("other",), render)[0] == '{"page":2}'
    stamps.value = 2  # a new score: every page again
    assert pages.get(("k",), render)[0] == '{"page":3}'
    now += 2.5  # what the stamp cannot show (deletes, out-of-order commits): bounded
    assert pages.get(("k",), render)[0] == '{"page":4}'
    assert first[1] != pages.get(("k",), render)[1]  # an ETag per body
