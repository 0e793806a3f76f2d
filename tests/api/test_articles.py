"""GET /v1/articles (stable cursor pages) and GET /v1/tickers (coverage)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import Engine
from webtest import TestApp

from jobs.score import score_pending
from scorer.api import create_app
from scorer.config.settings import Settings
from scorer.ingest.tickers import REASONS
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.store import store_items
from tests.helpers.items import AUTH
from tests.helpers.items import item as _item

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


@pytest.fixture
def loader(settings: Settings) -> ModelLoader:
    return ModelLoader.loaded(TransformersClassifier(settings.finbert_model, None, threads=1))


@pytest.fixture
def app(settings: Settings, engine: Engine, sessions, loader: ModelLoader) -> TestApp:  # type: ignore[no-untyped-def]
    return TestApp(create_app(settings, engine=engine, loader=loader))


def _add(sessions, loader: ModelLoader, items: list, now: datetime = NOW) -> None:  # type: ignore[no-untyped-def,type-arg]
    with sessions.begin() as session:
        store_items(session, items, now=now)
    assert loader.classifier is not None
    score_pending(sessions, loader.classifier, now=lambda: now)


def _pages(app: TestApp, url: str, between=lambda page: None) -> list[list[int]]:  # type: ignore[no-untyped-def]
    pages, cursor = [], None
    while True:
        body = app.get(url + (f"&cursor={cursor}" if cursor else ""), headers=AUTH).json
        pages.append([a["id"] for a in body["data"]])
        between(len(pages))
        cursor = body["next_cursor"]
        if cursor is None:
            return pages


def test_articles_are_newest_first_with_each_tickers_score(
    app: TestApp,
    sessions,
    loader: ModelLoader,  # type: ignore[no-untyped-def]
) -> None:
    older = NOW - timedelta(hours=2)
    _add(
        sessions,
        loader,
        [
            _item("new", "Apple and Microsoft rally", {"AAPL", "MSFT"}),
            _item("old", "Tesla falls", {"TSLA"}, older),
        ],
    )
    body = app.get("/v1/articles?limit=10", headers=AUTH).json
    assert [a["headline"] for a in body["data"]] == ["Apple and Microsoft rally", "Tesla falls"]
    first = body["data"][0]
    assert [t["ticker"] for t in first["tickers"]] == ["AAPL", "MSFT"]
    score = first["tickers"][0]
    assert set(score) == {
        "ticker",
        "label",
        "score",
        "probabilities",
        "scored_at",
        "model",
        "method",
        "scope",
        "highlights",
        "relevance",
        "tagged_by",
    }
    assert 0 <= score["relevance"] <= 1 and score["tagged_by"] in REASONS
    assert score["model"]["revision"] == "unknown" and -1 <= score["score"] <= 1
    assert first["published_at"] == "2026-11-25T19:00:00Z" and body["next_cursor"] is None

    only = app.get("/v1/articles?ticker=tsla", headers=AUTH).json["data"]
    assert [a["headline"] for a in only] == ["Tesla falls"]
    ranged = app.get("/v1/articles?from=2026-11-25T18:00&to=2026-11-25T19:30", headers=AUTH)
    assert [a["headline"] for a in ranged.json["data"]] == ["Apple and Microsoft rally"]
    label = first["tickers"][0]["label"]
    labelled = app.get(f"/v1/articles?ticker=AAPL&label={label}", headers=AUTH).json["data"]
    assert [a["headline"] for a in labelled] == ["Apple and Microsoft rally"]


def test_the_cursor_neither_skips_nor_repeats_while_new_rows_arrive(
    app: TestApp,
    sessions,
    loader: ModelLoader,  # type: ignore[no-untyped-def]
) -> None:
    # 25 articles, several sharing a published_at (the id breaks the tie).
    _add(
        sessions,
        loader,
        [
            _item(f"k{i}", f"Apple news {i}", {"AAPL"}, NOW - timedelta(minutes=i // 3))
            for i in range(25)
        ],
    )
    expected = [a["id"] for a in app.get("/v1/articles?limit=200", headers=AUTH).json["data"]]

    def insert_newer(page: int) -> None:  # news arriving between pages, newer and older
        later = NOW + timedelta(minutes=page)
        _add(sessions, loader, [_item(f"new{page}", f"Fresh {page}", {"AAPL"}, later)], later)

    pages = _pages(app, "/v1/articles?limit=4", insert_newer)
    seen = [i for page in pages for i in page]
    assert seen == expected, "every article once, in order, none of the new ones mid-way"
    assert len(pages) == 7 and len(pages[-1]) == 1


def test_a_tampered_or_foreign_cursor_is_a_400(app: TestApp, sessions, loader) -> None:  # type: ignore[no-untyped-def]
    _add(sessions, loader, [_item(f"k{i}", f"Apple {i}", {"AAPL"}) for i in range(3)])
    cursor = app.get("/v1/articles?limit=1", headers=AUTH).json["next_cursor"]
    blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    forged = base64.urlsafe_b64encode(blob[:12] + blob[12:].replace(b'",', b'",9')).decode()
    for bad in (forged, "not-a-cursor", cursor[:-2], "%FF%FE", "x" * 300):
        body = app.get(f"/v1/articles?cursor={bad}", headers=AUTH, status=400).json
        assert "'cursor'" in body["message"]
    assert app.get(f"/v1/articles?limit=1&cursor={cursor}", headers=AUTH).json["data"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("label=great", "label"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("ticker=no%20way", "ticker"),
        ("from=2026-11-02&to=2026-11-01", "from"),
        ("from=9999-12-31T23:59-14:00", "from"),
    ],
)
def test_a_bad_articles_parameter_is_a_400_naming_it(app: TestApp, query: str, name: str) -> None:
    body = app.get(f"/v1/articles?{query}", headers=AUTH, status=400).json
    assert f"'{name}'" in body["message"]


def test_tickers_list_the_watchlist_with_coverage(
    settings: Settings,
    engine: Engine,
    sessions,
    loader: ModelLoader,  # type: ignore[no-untyped-def]
) -> None:
    _add(
        sessions,
        loader,
        [
            _item("a", "Apple up", {"AAPL"}, NOW - timedelta(hours=1)),
            _item("b", "Apple down", {"AAPL"}, NOW - timedelta(days=2)),
            _item("c", "Apple old", {"AAPL"}, NOW - timedelta(days=9)),
        ],
    )
    app = TestApp(
        create_app(
            replace(settings, tickers=frozenset({"AAPL", "NVDA"})), engine=engine, loader=loader
        )
    )
    with time_machine.travel(NOW + timedelta(minutes=5), tick=False):
        body = app.get("/v1/tickers", headers=AUTH).json
    assert body["as_of"] == "2026-11-25T19:05:00Z"
    aapl, nvda = body["data"]
    assert (aapl["ticker"], aapl["articles_24h"], aapl["articles_7d"]) == ("AAPL", 1, 2)
    assert aapl["last_scored_at"] == "2026-11-25T19:00:00Z"
    assert aapl["last_score"]["published_at"] == "2026-11-25T18:00:00Z"
    assert nvda == {
        "ticker": "NVDA",
        "articles_24h": 0,
        "articles_7d": 0,
        "last_scored_at": None,
        "last_score": None,
    }
