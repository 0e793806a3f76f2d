"""The history endpoint's response cache: one render per view at a time, bounded bytes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from scorer.api import history
from scorer.api.http import etag_of

KEY = (
    "AAPL",
    "15m",
    "known",
    datetime(2026, 11, 2, tzinfo=UTC),
    datetime(2026, 11, 30, tzinfo=UTC),
)


class FakeEngine:
    """What the cache uses of an Engine: its url and a connection that reads the
    versions (``stamp``: all tickers'; ``tickers``: ticker -> its own)."""

    url = "sqlite://"

    def __init__(self) -> None:
        self.stamp = 1
        self.tickers: dict[str, int] = {}

    @contextmanager
    def connect(self) -> Iterator[Any]:
        engine = self

        class Rows:
            def all(self) -> list[tuple[str, str]]:
                own = [(f"rollups_version:{t}", str(v)) for t, v in engine.tickers.items()]
                return [("rollups_version", str(engine.stamp)), *own]

        class Conn:
            def execute(self, _: Any) -> Rows:
                return Rows()

        yield Conn()


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Each render's key; a render takes 50 ms, so concurrent requests overlap it."""
    done: list[tuple[Any, ...]] = []

    def render(_: Any, key: tuple[Any, ...]) -> str:
        time.sleep(0.05)
        done.append(key)
        return f'{{"n":{len(done)},"ticker":"{key[0]}"}}'

    monkeypatch.setattr(history, "_render", render)
    return done


def fetch_together(cache: history.ResponseCache, engine: FakeEngine, n: int) -> list[str]:
    bodies: list[str] = []
    threads = [
        threading.Thread(target=lambda: bodies.append(cache.get(engine, KEY)[0]))  # type: ignore[arg-type]
        for _ in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return bodies


def test_concurrent_misses_of_one_view_render_it_once(renders: list[Any]) -> None:
    cache, engine = history.ResponseCache(), FakeEngine()
    bodies = fetch_together(cache, engine, 8)
    assert len(renders) == 1
    assert bodies == ['{"n":1,"ticker":"AAPL"}'] * 8


def test_an_expired_view_is_served_while_one_thread_refreshes_it(renders: list[Any]) -> None:
    cache, engine = history.ResponseCache(max_age=0.3), FakeEngine()
    first, etag = cache.get(engine, KEY)  # type: ignore[arg-type]
    assert etag == etag_of(first)
    time.sleep(0.35)
    bodies = fetch_together(cache, engine, 8)
    assert len(renders) == 2  # one refresh, not eight
    assert set(bodies) == {first, '{"n":2,"ticker":"AAPL"}'}
    assert cache.get(engine, KEY)[0] == '{"n":2,"ticker":"AAPL"}'  # type: ignore[arg-type]


def test_a_new_score_drops_every_kept_view_once_the_stamp_is_read_again(
    renders: list[Any],
) -> None:
    clock = [0.0]
    cache, engine = history.ResponseCache(clock=lambda: clock[0]), FakeEngine()
    cache.get(engine, KEY)  # type: ignore[arg-type]
    engine.stamp = 2
    assert cache.get(engine, KEY)[0].startswith('{"n":1,')  # type: ignore[arg-type]
    clock[0] = 1.5
    assert cache.get(engine, KEY)[0].startswith('{"n":2,')  # type: ignore[arg-type]


def test_a_score_for_one_ticker_drops_only_that_tickers_views(renders: list[Any]) -> None:
    clock = [0.0]
    cache, engine = history.ResponseCache(clock=lambda: clock[0]), FakeEngine()
    msft = ("MSFT", *KEY[1:])
    cache.get(engine, KEY)  # type: ignore[arg-type]
    cache.get(engine, msft)  # type: ignore[arg-type]
    engine.tickers["AAPL"] = 7  # a batch scored AAPL only
    clock[0] = 1.5
    assert cache.get(engine, KEY)[0].startswith('{"n":3,')  # type: ignore[arg-type]
    assert cache.get(engine, msft)[0].startswith('{"n":2,')  # type: ignore[arg-type]
    assert len(renders) == 3
    engine.stamp = 2  # a rebuild or retention: every view goes
    clock[0] = 3.0
    assert cache.get(engine, msft)[0].startswith('{"n":4,')  # type: ignore[arg-type]


def test_kept_bodies_stay_within_the_byte_bound(renders: list[Any]) -> None:
    body_size = len('{"n":1,"ticker":"T0"}')
    cache, engine = history.ResponseCache(max_bytes=3 * body_size), FakeEngine()
    keys = [(f"T{i}", *KEY[1:]) for i in range(5)]
    for key in keys:
        cache.get(engine, key)  # type: ignore[arg-type]
    assert len(renders) == 5
    for key in keys[2:]:  # the three newest fit the bound, so they are kept
        cache.get(engine, key)  # type: ignore[arg-type]
    assert len(renders) == 5
    cache.get(engine, keys[0])  # type: ignore[arg-type]
    assert len(renders) == 6  # the oldest went first: evicted, so rendered again
