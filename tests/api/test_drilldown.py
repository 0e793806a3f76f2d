"""``/v1/scores/history/articles``: every bucket's count is exactly the articles it
lists, on both bases, through re-scores and retention; a pruned bucket is a 410."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from jobs.retention import RetentionPolicy, run_retention
from scorer.api import create_app
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.storage import demo
from scorer.storage.store import store_scores
from scorer.storage.tables import ScoreEvent
from tests.helpers.items import AUTH
from tests.helpers.score_data import add_articles, event, ny, store_rescored

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
PATH = "/v1/scores/history/articles"
TICKERS = demo.tickers(2)
VIEWS = [
    {"interval": "15m", "from": "2026-11-16", "to": "2026-11-26"},
    {"interval": "1h", "from": "2026-10-20", "to": "2026-11-26"},
    {"interval": "session", "from": "2026-09-01", "to": "2026-11-26"},
]


@pytest.fixture
def app(settings: Settings, engine: Engine) -> TestApp:
    never = ModelLoader(lambda: (_ for _ in ()).throw(OSError("not needed")))
    return TestApp(create_app(settings, engine=engine, loader=never))


def _seed(sessions: sessionmaker[Session], days: int = 30) -> None:
    """Demo data (roll-ups rebuilt from the events, a few pairs re-scored), then batches
    through the write path: new stories, and re-scores of demo pairs under r3, some of
    them with a later publication time, so their published bucket moves."""
    with sessions.begin() as session:
        demo.seed(session, n_tickers=2, n_events=400, days=days, now=NOW)
    with sessions() as session:
        pairs = session.execute(
            select(ScoreEvent.article_id, ScoreEvent.ticker, ScoreEvent.published_at)
            .order_by(ScoreEvent.id.desc())
            .limit(30)
        ).all()
    ids = add_articles(sessions, 6, TICKERS[0], ny(2026, 11, 24, 15, 3), start=10**6)
    with sessions.begin() as session:
        store_scores(
            session,
            [event(i, TICKERS[0], 0.3, ny(2026, 11, 24, 15, 3), ny(2026, 11, 24, 15, 9), "r1")
             for i in ids],
        )  # fmt: skip
    for chunk in (pairs[:15], pairs[15:]):
        with sessions.begin() as session:
            store_scores(
                session,
                [
                    event(a, t, -0.7, p + timedelta(minutes=20 * (a % 2)), NOW, "r3")
                    for a, t, p in chunk
                ],
            )


def _buckets(app: TestApp, ticker: str, basis: str, view: dict[str, str]) -> list[dict[str, Any]]:
    query = {"ticker": ticker, "basis": basis, **view}
    return app.get("/v1/scores/history", query, headers=AUTH).json["data"]  # type: ignore[no-any-return]


def _all_pages(app: TestApp, link: str, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    first = app.get(f"{link}&limit={limit}", headers=AUTH).json
    listed, page = list(first["articles"]), first
    while page["next_cursor"] is not None:
        page = app.get(f"{link}&limit={limit}&cursor={page['next_cursor']}", headers=AUTH).json
        assert page["count"] == first["count"]
        listed += page["articles"]
    return first, listed


def _check_every_bucket(app: TestApp, limit: int = 3) -> int:
    """For every non-empty bucket of the views, both bases: the pages list exactly
    ``count`` distinct articles, whose scores are the bucket's (mean, min, max)."""
    checked = 0
    for ticker in TICKERS:
        for basis in ("known", "published"):
            for view in VIEWS:
                for bucket in _buckets(app, ticker, basis, view):
                    if bucket["count"] == 0:
                        assert bucket["articles"] is None
                        continue
                    first, listed = _all_pages(app, bucket["articles"], limit)
                    assert first["bucket"] == {"start": bucket["start"], "end": bucket["end"]}
                    assert first["count"] == bucket["count"] == len(listed), bucket
                    assert len({a["id"] for a in listed}) == len(listed)
                    scores = [a["score"]["score"] for a in listed]
                    assert sum(scores) / len(scores) == pytest.approx(bucket["mean"], abs=1e-5)
                    assert min(scores) == pytest.approx(bucket["min"], abs=1e-5)
                    assert max(scores) == pytest.approx(bucket["max"], abs=1e-5)
                    assert {a["score"]["ticker"] for a in listed} == {ticker}
                    checked += 1
    return checked


def test_every_bucket_lists_exactly_the_articles_it_counts_on_both_bases(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    _seed(sessions)
    assert _check_every_bucket(app) > 100


def test_a_rescore_swaps_the_published_score_and_keeps_the_known_one(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    first, second = store_rescored(sessions)
    link = f"{PATH}?ticker=AAPL&interval=15m&bucket=2026-11-25T20:00:00Z"
    known = app.get(link, headers=AUTH).json
    published = app.get(link + "&basis=published", headers=AUTH).json
    assert known["count"] == published["count"] == 2
    assert [(a["id"], a["score"]["score"], a["score"]["model"]["revision"]) for a in
            known["articles"]] == [(first, 0.8, "r1"), (second, 0.1, "r1")]  # fmt: skip
    assert [(a["id"], a["score"]["score"], a["score"]["model"]["revision"]) for a in
            published["articles"]] == [(first, -0.6, "r2"), (second, 0.1, "r1")]  # fmt: skip
    # The re-score on Friday is not a newly known pair: Friday's first bucket is empty.
    friday = app.get(f"{PATH}?ticker=AAPL&interval=1h&bucket=2026-11-27T14:30:00Z", headers=AUTH)
    assert friday.json["count"] == 0 and friday.json["articles"] == []


def test_the_body_has_the_documented_shape(sessions: sessionmaker[Session], app: TestApp) -> None:
    store_rescored(sessions)
    body = app.get(f"{PATH}?ticker=AAPL&interval=session&bucket=2026-11-25T14:30:00Z&limit=1",
                   headers=AUTH).json  # fmt: skip
    assert set(body) == {
        "ticker",
        "interval",
        "basis",
        "bucket",
        "count",
        "articles",
        "next_cursor",
    }
    assert body["bucket"] == {"start": "2026-11-25T14:30:00Z", "end": "2026-11-25T21:00:00Z"}
    assert (body["basis"], body["count"], len(body["articles"])) == ("known", 2, 1)
    article = body["articles"][0]
    assert set(article) == {"id", "headline", "url", "source", "published_at", "score"}
    assert article["published_at"] == "2026-11-25T20:00:00Z"
    assert set(article["score"]) >= {"ticker", "label", "score", "relevance", "highlights"}
    assert isinstance(body["next_cursor"], str)


def test_news_after_the_close_is_in_the_next_sessions_first_bucket(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    late = ny(2026, 11, 25, 20, 0)  # Wednesday evening; Thursday is Thanksgiving
    (article,) = add_articles(sessions, 1, "AAPL", late)
    with sessions.begin() as session:
        store_scores(session, [event(article, "AAPL", 0.5, late, late, "r1")])
    friday = {"from": "2026-11-27", "to": "2026-11-28"}
    (bucket, *_) = _buckets(app, "AAPL", "known", {"interval": "15m", **friday})
    assert bucket["start"] == "2026-11-27T14:30:00Z" and bucket["count"] == 1
    assert [a["id"] for a in app.get(bucket["articles"], headers=AUTH).json["articles"]] == [
        article
    ]


def test_retention_makes_pruned_buckets_a_410_and_kept_ones_stay_exact(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    _seed(sessions)
    policy = RetentionPolicy(detail_days=5, rollup_15m_days=3650, rollup_1h_days=3650, budget=None)
    assert run_retention(sessions, policy, now=NOW).articles > 0
    gone = kept = 0
    for basis in ("known", "published"):
        for view in VIEWS:
            for bucket in _buckets(app, TICKERS[0], basis, view):
                if bucket["count"] == 0:
                    continue
                response = app.get(bucket["articles"], headers=AUTH, expect_errors=True)
                if response.status_int == 410:
                    assert response.json["error"] == "gone"
                    assert "pruned" in response.json["message"]
                    assert datetime.fromisoformat(bucket["end"]) <= NOW
                    gone += 1
                else:
                    assert response.status_int == 200
                    kept += 1
    assert gone > 0 and kept > 0
    # Every bucket that still answers lists exactly its count (410s skipped).
    _check_every_bucket_kept(app)


def test_a_rescore_of_a_pruned_pair_does_not_push_the_410s_later(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    """Demo pairs are re-scored up to 3 days after they were first scored: those later
    events place nothing on either basis, so every bucket from the cutoff on (plus the
    3 minutes a first score may take) keeps its articles and answers 200."""
    _seed(sessions)
    policy = RetentionPolicy(detail_days=5, rollup_15m_days=3650, rollup_1h_days=3650, budget=None)
    assert run_retention(sessions, policy, now=NOW).articles > 0
    after = NOW - timedelta(days=5) + timedelta(minutes=5)
    checked = 0
    for ticker in TICKERS:
        for basis in ("known", "published"):
            for bucket in _buckets(app, ticker, basis, VIEWS[0]):
                if bucket["count"] and datetime.fromisoformat(bucket["start"]) >= after:
                    first, listed = _all_pages(app, bucket["articles"], 50)
                    assert first["count"] == bucket["count"] == len(listed)
                    checked += 1
    assert checked > 10


def _check_every_bucket_kept(app: TestApp) -> None:
    for ticker in TICKERS:
        for basis in ("known", "published"):
            for view in VIEWS:
                for bucket in _buckets(app, ticker, basis, view):
                    if bucket["count"] == 0:
                        continue
                    if (
                        app.get(bucket["articles"], headers=AUTH, expect_errors=True).status_int
                        == 410
                    ):
                        continue
                    first, listed = _all_pages(app, bucket["articles"], 4)
                    assert first["count"] == bucket["count"] == len(listed)


def test_a_15m_bucket_pruned_from_the_roll_ups_is_a_410_while_its_detail_is_kept(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    store_rescored(sessions)
    policy = RetentionPolicy(detail_days=3650, rollup_15m_days=1, rollup_1h_days=3650, budget=None)
    run_retention(sessions, policy, now=datetime(2026, 12, 7, tzinfo=UTC))
    link = f"{PATH}?ticker=AAPL&interval=15m&bucket=2026-11-25T20:00:00Z"
    body = app.get(link, headers=AUTH, status=410).json
    assert body["error"] == "gone" and "roll-ups" in body["message"]
    hour = app.get(link.replace("15m", "1h").replace("20:00", "19:30"), headers=AUTH).json
    assert hour["count"] == len(hour["articles"]) == 2


def test_the_410_says_before_when(sessions: sessionmaker[Session], app: TestApp) -> None:
    store_rescored(sessions)
    policy = RetentionPolicy(detail_days=1, rollup_15m_days=3650, rollup_1h_days=3650, budget=None)
    run_retention(sessions, policy, now=datetime(2026, 12, 7, tzinfo=UTC))
    body = app.get(f"{PATH}?ticker=AAPL&interval=session&bucket=2026-11-25T14:30:00Z",
                   headers=AUTH, status=410).json  # fmt: skip
    assert body["message"].startswith("the detail of this bucket was pruned")
    assert "2026-12-06T00:00:00Z" in body["message"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("interval=15m&bucket=2026-11-25T14:35:00Z", "'bucket' is not the start of a 15m bucket"),
        ("interval=1h&bucket=2026-11-25T14:45:00Z", "'bucket' is not the start of a 1h bucket"),
        ("interval=15m&bucket=2026-11-26T14:30:00Z", "'bucket' is not the start"),  # a holiday
        ("interval=15m&bucket=2026-11-25T13:00:00Z", "'bucket' is not the start"),  # pre-market
        ("interval=session&bucket=2026-11-25T15:30:00Z", "'bucket' is not the start"),
        ("interval=15m&bucket=1990-01-02T14:30:00Z", "'bucket' is outside the market calendar"),
        ("interval=15m&bucket=0001-01-01", "'bucket' is outside the market calendar"),
        ("interval=15m&bucket=9999-12-31", "'bucket' is outside the market calendar"),
        ("interval=15m&bucket=yesterday", "'bucket' must be an ISO 8601 date"),
        ("interval=15m", "'bucket' is required"),
        ("bucket=2026-11-25T14:30:00Z", "'interval' is required"),
        ("interval=2h&bucket=2026-11-25T14:30:00Z", "'interval' must be one of 15m, 1h, session"),
        ("interval=15m&bucket=2026-11-25T14:30:00Z&basis=x", "'basis' must be one of"),
        ("interval=15m&interval=15m&bucket=2026-11-25T14:30:00Z", "'interval' is given 2 times"),
        ("interval=15m&bucket=2026-11-25T14:30:00Z&limit=201", "'limit' must be between 1 and 200"),
        ("interval=15m&bucket=2026-11-25T14:30:00Z&cursor=zzz", "'cursor' is not a cursor"),
        ("interval=15m&bucket=2026-11-25T14:30:00Z&from=2026-11-25", "'from' is not a parameter"),
    ],
)
def test_a_bad_request_is_a_400_naming_the_parameter(
    app: TestApp, query: str, message: str
) -> None:
    body = app.get(f"{PATH}?ticker=AAPL&{query}", headers=AUTH, status=400).json
    assert body["error"] == "bad_request" and body["message"].startswith(message), body


def test_the_ticker_is_required(app: TestApp) -> None:
    url = f"{PATH}?interval=15m&bucket=2026-11-25T14:30:00Z"
    assert app.get(url, headers=AUTH, status=400).json["message"].startswith("'ticker' is required")


def test_a_cursor_of_another_bucket_or_of_articles_is_a_400(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    store_rescored(sessions)
    link = f"{PATH}?ticker=AAPL&interval=15m&bucket=2026-11-25T20:00:00Z"
    cursor = app.get(link + "&limit=1", headers=AUTH).json["next_cursor"]
    other = f"{PATH}?ticker=AAPL&interval=15m&bucket=2026-11-25T20:15:00Z&cursor={cursor}"
    assert (
        app.get(other, headers=AUTH, status=400)
        .json["message"]
        .startswith("'cursor' is not a cursor of this bucket")
    )
    theirs = app.get("/v1/articles?limit=1", headers=AUTH).json["next_cursor"]
    message = app.get(f"{link}&cursor={theirs}", headers=AUTH, status=400).json["message"]
    assert message.startswith("'cursor' is not a cursor this API issued")


def test_it_needs_the_token(app: TestApp) -> None:
    url = f"{PATH}?ticker=AAPL&interval=15m&bucket=2026-11-25T14:30:00Z"
    assert app.get(url, status=401).json["error"] == "unauthorized"
    bad = {"Authorization": "Bearer wrong"}
    assert app.get(url, headers=bad, status=401).json["error"] == "unauthorized"


def test_an_empty_bucket_links_to_nothing_and_lists_nothing(
    sessions: sessionmaker[Session], app: TestApp
) -> None:
    store_rescored(sessions)
    data = _buckets(app, "AAPL", "known", {"interval": "15m", "from": "2026-11-25T19:45:00Z",
                                            "to": "2026-11-25T20:30:00Z"})  # fmt: skip
    assert [(b["count"], b["articles"] is None) for b in data] == [(0, True), (2, False), (0, True)]
    empty = app.get(f"{PATH}?ticker=AAPL&interval=15m&bucket=2026-11-25T19:45:00Z", headers=AUTH)
    assert empty.json["count"] == 0 and empty.json["articles"] == []
    assert empty.json["next_cursor"] is None
