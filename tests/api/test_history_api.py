"""``/v1/scores/history?interval=…`` and latest's ``window``, served from the roll-ups."""

from __future__ import annotations

import json
import threading
from datetime import datetime

import pytest
import time_machine
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from scorer.api import create_app, history
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.storage import rollups
from scorer.storage.store import store_scores
from tests.conftest import TOKEN
from tests.helpers.score_data import add_articles, event, ny, store_rescored
from tests.helpers.waiting import eventually

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(settings: Settings, engine: Engine) -> TestApp:
    never = ModelLoader(lambda: (_ for _ in ()).throw(OSError("not needed")))
    return TestApp(create_app(settings, engine=engine, loader=never))


@pytest.fixture
def rescored(sessions: sessionmaker[Session]) -> None:
    store_rescored(sessions)


def get(app: TestApp, status: int = 200, **query: str) -> dict:  # type: ignore[type-arg]
    return app.get(
        "/v1/scores/history", {"ticker": "AAPL", **query}, headers=AUTH, status=status
    ).json  # type: ignore[no-any-return]


@pytest.mark.usefixtures("rescored")
def test_session_buckets_run_from_open_to_close_with_empty_sessions_at_zero(app: TestApp) -> None:
    body = get(app, interval="session", **{"from": "2026-11-24", "to": "2026-11-28"})
    assert [(b["session"], b["start"], b["end"], b["count"]) for b in body["data"]] == [
        ("2026-11-24", "2026-11-24T14:30:00Z", "2026-11-24T21:00:00Z", 0),
        ("2026-11-25", "2026-11-25T14:30:00Z", "2026-11-25T21:00:00Z", 2),
        ("2026-11-27", "2026-11-27T14:30:00Z", "2026-11-27T18:00:00Z", 0),  # early close
    ]
    wednesday = body["data"][1]
    assert wednesday | {"mean": round(wednesday["mean"], 6)} == {
        "start": "2026-11-25T14:30:00Z",
        "end": "2026-11-25T21:00:00Z",
        "session": "2026-11-25",
        "count": 2,
        "mean": 0.45,
        "min": 0.1,
        "max": 0.8,
        "labels": {"positive": 1, "negative": 0, "neutral": 1},
        "relevance_weighted_mean": 0.45,
        "articles": "/v1/scores/history/articles?ticker=AAPL&interval=session&basis=known"
        "&bucket=2026-11-25T14:30:00Z",
    }
    empty = body["data"][0]
    assert empty["articles"] is None
    assert empty["mean"] is None and empty["labels"] == {"positive": 0, "negative": 0, "neutral": 0}


@pytest.mark.usefixtures("rescored")
def test_known_keeps_what_was_shown_and_published_follows_the_rescore(app: TestApp) -> None:
    day = {"from": "2026-11-25T20:00:00Z", "to": "2026-11-25T20:15:00Z"}
    known = get(app, interval="15m", **day)["data"]
    published = get(app, interval="15m", basis="published", **day)["data"]
    assert [(b["start"], b["count"], b["max"]) for b in known] == [("2026-11-25T20:00:00Z", 2, 0.8)]
    assert [(b["start"], b["count"], b["max"], b["min"]) for b in published] == [
        ("2026-11-25T20:00:00Z", 2, 0.1, -0.6)
    ]
    assert published[0]["mean"] == pytest.approx(-0.25)
    # The re-score on Friday 10:02 is not a newly known pair: Friday stays empty.
    friday = get(app, interval="1h", **{"from": "2026-11-27", "to": "2026-11-28"})["data"]
    assert [b["start"] for b in friday] == [
        "2026-11-27T14:30:00Z", "2026-11-27T15:30:00Z", "2026-11-27T16:30:00Z",
        "2026-11-27T17:30:00Z",
    ]  # fmt: skip
    assert all(b["count"] == 0 for b in friday) and friday[-1]["end"] == "2026-11-27T18:00:00Z"


def test_15m_buckets_cover_sessions_only_oldest_first(app: TestApp) -> None:
    body = get(app, interval="15m", **{"from": "2026-11-26", "to": "2026-11-28"})
    starts = [b["start"] for b in body["data"]]
    assert starts[0] == "2026-11-27T14:30:00Z" and starts[-1] == "2026-11-27T17:45:00Z"
    assert len(starts) == 14 and starts == sorted(starts)  # Thanksgiving has none
    assert body["interval"] == "15m" and body["basis"] == "known"


@pytest.mark.parametrize(
    ("interval", "span", "limit"),
    [
        ("15m", ("2026-10-01", "2026-11-02"), "31 days"),
        ("1h", ("2025-01-01", "2026-01-03"), "1 year"),
    ],
)
def test_a_range_past_the_intervals_bound_is_a_400_naming_the_limit(
    app: TestApp, interval: str, span: tuple[str, str], limit: str
) -> None:
    body = get(app, 400, interval=interval, **{"from": span[0], "to": span[1]})
    assert body["error"] == "bad_request" and limit in body["message"]
    assert f"interval={interval}" in body["message"]


@pytest.mark.parametrize("interval", ["15m", "1h", "session"])
@pytest.mark.parametrize(
    "bounds",
    [
        {"to": "0001-01-01"},
        {"from": "0001-01-01", "to": "0001-01-02"},
        # Inside datetime's range but not the calendar's: a 400, not an empty 200 that
        # a panel would draw as "no sessions".
        {"from": "1900-01-01", "to": "1900-01-05"},
        {"from": "9999-12-30", "to": "9999-12-31"},
    ],
)
def test_a_range_outside_the_market_calendar_is_a_400_not_a_500(
    app: TestApp, interval: str, bounds: dict[str, str]
) -> None:
    body = get(app, 400, interval=interval, **bounds)
    assert "'from'/'to'" in body["message"]


def test_bad_interval_and_basis_are_400s_naming_the_parameter(app: TestApp) -> None:
    assert "'interval'" in get(app, 400, interval="5m")["message"]
    assert "'basis'" in get(app, 400, interval="1h", basis="seen")["message"]


@pytest.mark.usefixtures("rescored")
def test_without_interval_history_still_returns_raw_events(app: TestApp) -> None:
    body = get(app, **{"from": "2026-11-25", "to": "2026-11-28"})
    assert [e["score"] for e in body["data"]] == [0.8, 0.1, -0.6]


def test_latest_carries_a_rolling_window_from_the_roll_ups(
    app: TestApp, sessions: sessionmaker[Session]
) -> None:
    now = ny(2026, 11, 25, 14, 0)
    published = ny(2026, 11, 25, 13, 40)
    ids = add_articles(sessions, 3, "AAPL", published)
    with sessions.begin() as session:
        store_scores(
            session,
            [
                event(ids[0], "AAPL", 0.6, published, ny(2026, 11, 25, 13, 41), "r1"),
                event(ids[1], "AAPL", -0.4, published, ny(2026, 11, 24, 15, 0), "r1"),
                event(ids[2], "AAPL", 0.0, published, ny(2026, 11, 20, 11, 0), "r1"),
            ],
        )
    with time_machine.travel(now, tick=False):
        items = {
            window: app.get(
                "/v1/scores/latest", {"tickers": "AAPL,MSFT", "window": window}, headers=AUTH
            ).json
            for window in ("1h", "24h", "7d")
        }
        default = app.get("/v1/scores/latest", {"tickers": "AAPL"}, headers=AUTH).json
        bad = app.get(
            "/v1/scores/latest", {"tickers": "AAPL", "window": "2d"}, headers=AUTH, status=400
        )
    assert items["1h"]["missing"] == ["MSFT"]
    windows = {w: body["data"][0]["window"] for w, body in items.items()}
    assert windows["1h"] == {
        "span": "1h",
        "from": "2026-11-25T18:00:00Z",
        "count": 1,
        "mean": 0.6,
        "labels": {"positive": 1, "negative": 0, "neutral": 0},
    }
    assert windows["24h"]["count"] == 2 and windows["24h"]["mean"] == pytest.approx(0.1)
    assert windows["7d"]["count"] == 3 and windows["7d"]["labels"]["neutral"] == 1
    assert default["data"][0]["window"]["span"] == "24h"
    assert "'window'" in bad.json["message"]


def test_a_newly_stored_score_shows_in_history_within_a_second(
    settings: Settings,
    engine: Engine,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [0.0]
    real = history.ResponseCache
    monkeypatch.setattr(history, "ResponseCache", lambda: real(clock=lambda: clock[0]))
    never = ModelLoader(lambda: (_ for _ in ()).throw(OSError("not needed")))
    app = TestApp(create_app(settings, engine=engine, loader=never))
    day = {"interval": "session", "from": "2026-11-24", "to": "2026-11-25"}
    assert get(app, **day)["data"][0]["count"] == 0
    published = ny(2026, 11, 24, 11, 0)
    ids = add_articles(sessions, 1, "AAPL", published)
    with sessions.begin() as session:
        store_scores(session, [event(ids[0], "AAPL", 0.3, published, published, "r1")])
    clock[0] = 0.5  # the kept answer: no database round trip per request
    assert get(app, **day)["data"][0]["count"] == 0
    clock[0] = 1.5  # the stamp is read again, and the new score shows
    assert get(app, **day)["data"][0]["count"] == 1


# --- the kept views: per ticker, against a real database ---------------------------


def _view(ticker: str) -> tuple[str, str, str, datetime, datetime]:
    return (ticker, "15m", "known", ny(2026, 11, 23, 9, 30), ny(2026, 11, 23, 16, 0))


def _count(body: str) -> int:
    return sum(b["count"] for b in json.loads(body)["data"])


def test_a_batch_for_one_ticker_keeps_the_other_tickers_views(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    published = ny(2026, 11, 23, 10, 0)
    aapl = add_articles(sessions, 2, "AAPL", published)
    msft = add_articles(sessions, 1, "MSFT", published, start=10)
    with sessions.begin() as session:
        store_scores(
            session,
            [
                event(aapl[0], "AAPL", 0.5, published, published, "r1"),
                event(msft[0], "MSFT", 0.2, published, published, "r1"),
            ],
        )
    clock = [0.0]
    cache = history.ResponseCache(clock=lambda: clock[0])
    kept_msft, _ = cache.get(engine, _view("MSFT"))
    assert _count(cache.get(engine, _view("AAPL"))[0]) == 1
    with sessions.begin() as session:
        store_scores(session, [event(aapl[1], "AAPL", 0.1, published, published, "r1")])
    clock[0] = 1.5  # the versions are read again
    assert _count(cache.get(engine, _view("AAPL"))[0]) == 2
    assert cache.get(engine, _view("MSFT"))[0] is kept_msft  # kept, not rendered again
    with sessions.begin() as session:  # a rebuild renews every ticker's views
        rollups.rebuild(session)
    clock[0] = 3.0
    assert cache.get(engine, _view("MSFT"))[0] is not kept_msft


def test_two_writers_of_one_ticker_at_once_each_commit_a_version_of_their_own(
    sessions: sessionmaker[Session], engine: Engine
) -> None:
    """Postgres: the second writer of a ticker waits for the first (its bucket and
    version rows), so no commit hides behind a version a reader already saw."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers commit one at a time")
    published = ny(2026, 11, 23, 10, 0)
    ids = add_articles(sessions, 2, "AAPL", published)
    clock = [0.0]
    cache = history.ResponseCache(clock=lambda: clock[0])
    first = sessions()
    thread = threading.Thread(target=lambda: None)
    try:
        store_scores(first, [event(ids[0], "AAPL", 0.5, published, published, "r1")])  # open

        def second() -> None:
            with sessions.begin() as session:
                store_scores(session, [event(ids[1], "AAPL", 0.1, published, published, "r1")])

        thread = threading.Thread(target=second)
        thread.start()
        with engine.connect() as conn:  # the second is blocked on a lock the first holds
            waiting = text(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            eventually(lambda: bool(conn.execute(waiting).scalar()), timeout=30)
        assert _count(cache.get(engine, _view("AAPL"))[0]) == 0
        first.commit()
    finally:
        first.close()  # a failed assertion must not leave the lock held
        thread.join(timeout=30)
    assert not thread.is_alive()
    clock[0] = 1.5
    assert _count(cache.get(engine, _view("AAPL"))[0]) == 2
