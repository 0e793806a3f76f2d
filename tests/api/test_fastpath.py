"""Kept latest answers replayed before Bottle routes them (scorer/api/fastpath.py):
the very bytes Bottle sent, never for a request Bottle would refuse, never stale."""

from __future__ import annotations

import io
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from webtest import TestApp

from scorer.api import create_app
from scorer.api.fastpath import App
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.storage.tables import Article, ArticleTicker, ScoreEvent
from tests.conftest import TOKEN
from tests.helpers.score_data import event

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LATEST = "/v1/scores/latest"
QUERY = "tickers=AAPL,MSFT,TSLA,NVDA"
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


def _score(engine: Engine, article_id: int, ticker: str, score: float) -> None:
    at = T0 + timedelta(minutes=article_id)
    with engine.begin() as conn:
        conn.execute(
            insert(Article),
            {
                "id": article_id,
                "dedup_key": f"k{article_id}",
                "title": f"{ticker} story {article_id} " + "with a long headline " * 5,
                "source": "Test Wire",
                "published_at": at,
                "seen_at": at,
            },
        )
        conn.execute(insert(ArticleTicker), {"article_id": article_id, "ticker": ticker})
        conn.execute(insert(ScoreEvent), event(article_id, ticker, score, at, at, "r1"))


@pytest.fixture
def raw(settings: Settings, engine: Engine) -> App:
    for i, ticker in enumerate(("AAPL", "MSFT", "TSLA", "NVDA"), start=1):
        _score(engine, i, ticker, 0.5)
    never = ModelLoader(lambda: (_ for _ in ()).throw(OSError("not needed")))
    app = create_app(settings, engine=engine, loader=never)
    assert isinstance(app, App)
    return app


def _call(app: App, query: str, **headers: str) -> tuple[str, list[tuple[str, str]], bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": LATEST,
        "QUERY_STRING": query,
        "SERVER_NAME": "test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        **{"HTTP_" + name.upper(): value for name, value in headers.items()},
    }
    sent: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(app(environ, lambda status, headers, exc=None: sent.append((status, headers))))
    return sent[0][0], sent[0][1], body


def test_a_kept_answer_is_the_very_bytes_bottle_sent_for_each_kind_of_request(raw: App) -> None:
    fast = raw.fast_paths[LATEST]
    auth = {"authorization": AUTH["Authorization"]}
    plain = _call(raw, QUERY, **auth)
    etag = dict(plain[1])["Etag"]
    kinds = [
        {},
        {"accept_encoding": "gzip"},
        {"if_none_match": etag},
        {"accept_encoding": "gzip", "if_none_match": f"W/{etag}"},
    ]
    for kind in kinds:
        by_bottle = _call(raw, QUERY, **auth, **kind)
        assert by_bottle[0] in ("200 OK", "304 Not Modified"), kind
        environ = {"HTTP_AUTHORIZATION": auth["authorization"], "QUERY_STRING": QUERY}
        environ |= {"HTTP_" + k.upper(): v for k, v in kind.items()}
        assert fast.answer(environ) == by_bottle, kind  # kept: replayed as it was
        assert _call(raw, QUERY, **auth, **kind) == by_bottle
    gzipped = _call(raw, QUERY, **auth, accept_encoding="gzip")
    assert ("Content-Encoding", "gzip") in gzipped[1]
    assert _call(raw, QUERY, **auth, if_none_match=etag)[0] == "304 Not Modified"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"bearer {TOKEN}"},  # another spelling: Bottle's plugin decides
        {"authorization": "Bearer " + "x" * 2000},
    ],
)
def test_a_request_without_the_plain_token_is_never_answered_from_what_is_kept(
    raw: App, headers: dict[str, str]
) -> None:
    _call(raw, QUERY, authorization=AUTH["Authorization"])  # kept now
    environ = {"QUERY_STRING": QUERY, **{"HTTP_" + k.upper(): v for k, v in headers.items()}}
    assert raw.fast_paths[LATEST].answer(environ) is None
    status = _call(raw, QUERY, **headers)[0]
    expected = "200 OK" if headers.get("authorization", "").lower() == f"bearer {TOKEN}" else None
    assert status == expected or status.startswith(("401", "431")), status


def test_a_score_committed_after_an_answer_was_kept_is_served_by_the_next_request(
    raw: App, engine: Engine
) -> None:
    app = TestApp(raw)
    other = app.get(f"{LATEST}?tickers=TSLA", headers=AUTH)
    before = app.get(f"{LATEST}?{QUERY}", headers=AUTH)
    assert app.get(f"{LATEST}?{QUERY}", headers=AUTH).body == before.body  # kept
    _score(engine, 10, "AAPL", -0.9)
    after = app.get(f"{LATEST}?{QUERY}", headers=AUTH).json
    assert [d["score"] for d in after["data"] if d["ticker"] == "AAPL"] == [-0.9]
    # A list naming no ticker with a new score keeps its answer (and its ETag).
    assert app.get(f"{LATEST}?tickers=TSLA", headers=AUTH).headers["ETag"] == other.headers["ETag"]


def test_a_bad_query_is_refused_by_bottle_as_before(raw: App) -> None:
    app = TestApp(raw)
    app.get(f"{LATEST}?{QUERY}", headers=AUTH)
    assert app.get(f"{LATEST}?{QUERY}&x=1", headers=AUTH, status=400).json["error"] == "bad_request"
    assert app.post(f"{LATEST}?{QUERY}", headers=AUTH, status=405)


def test_what_no_stamp_shows_a_deleted_score_is_gone_after_max_age(
    raw: App, engine: Engine
) -> None:
    from sqlalchemy import delete

    from scorer.api.scores import _LatestCache
    from scorer.api.stamp import StampReader

    now = 0.0
    cache = _LatestCache(engine, StampReader(engine), clock=lambda: now)
    _score(engine, 10, "TSLA", -0.9)  # the newest TSLA score, not the newest id later
    _score(engine, 11, "AAPL", 0.1)
    assert '"score":-0.9' in cache.get(["TSLA"], "24h")[0]
    with engine.begin() as conn:  # retention, say: the stamp (max id 11) does not move
        conn.execute(delete(ScoreEvent).where(ScoreEvent.article_id == 10))
    assert '"score":-0.9' in cache.get(["TSLA"], "24h")[0]  # kept, within max_age
    now += 2.5
    assert '"score":-0.9' not in cache.get(["TSLA"], "24h")[0]
