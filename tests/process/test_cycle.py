"""The whole cycle, on SQLite and Postgres: feed -> article -> score event -> API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from webtest import TestApp

from scorer.config.settings import Settings
from scorer.ingest.sources import FeedSpec
from scorer.process.service import Service
from scorer.scoring.model import ModelLoader, load_classifier
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.scoring.sentiment import predict_articles
from scorer.storage.tables import Article, ScoreEvent
from tests.conftest import TOKEN
from tests.helpers.feed_server import StubServer

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def service(settings: Settings, feed_server: StubServer) -> Iterator[Service]:
    wire = feed_server.serve_file("/wire.xml", "watchlist_news.xml")
    aapl = feed_server.serve_file("/aapl.xml", "seekingalpha_aapl_symbol_feed_2026-03-08.xml")
    broken = feed_server.url("/missing.xml")
    feeds = (FeedSpec(broken), FeedSpec(wire), FeedSpec(aapl, ticker="AAPL"))
    configured = replace(settings, feeds=feeds)
    service = Service(configured, loader=ModelLoader.loaded(load_classifier(configured)))
    yield service
    service.stop()


def test_one_cycle_stores_scores_and_serves_them(service: Service) -> None:
    result = service.run_cycle(NOW)

    assert result.ingest.feeds == 3 and result.ingest.fetched == 2
    assert len(result.ingest.errors) == 1 and "404" in result.ingest.errors[0]
    assert result.score is not None and result.score.events > 0 and not result.score.more

    app = TestApp(service.app())
    body = app.get("/v1/scores/latest?tickers=AAPL,MSFT,NVDA,TSLA,ZZZZ", headers=AUTH).json
    assert {d["ticker"] for d in body["data"]} == {"AAPL", "MSFT", "NVDA", "TSLA"}
    assert body["missing"] == ["ZZZZ"]

    # The label served is what the model says for that headline and summary.
    classifier = service.loader.classifier
    assert isinstance(classifier, TransformersClassifier)
    tsla = next(d for d in body["data"] if d["ticker"] == "TSLA")
    expected = predict_articles(
        classifier, [("$TSLA stock plunges on recall", "Shares fell 8 percent after the recall.")]
    )[0]
    assert tsla["article"]["headline"] == "$TSLA stock plunges on recall"
    assert tsla["label"] == expected.label
    assert tsla["score"] == pytest.approx(expected.score, abs=1e-5)
    # A local model directory is recorded by its name, never its path (issue 18).
    model_dir = service.settings.finbert_model
    assert tsla["model"] == {"id": model_dir.rsplit("/", 1)[-1], "revision": "unknown"}


def test_a_second_cycle_stores_and_scores_nothing_twice(service: Service) -> None:
    service.run_cycle(NOW)
    with service.sessions() as session:
        articles = session.scalar(select(func.count()).select_from(Article))
        events = session.scalar(select(func.count()).select_from(ScoreEvent))

    again = service.run_cycle(NOW)

    assert again.ingest.new == 0
    assert again.score is not None and again.score.events == 0
    with service.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Article)) == articles
        assert session.scalar(select(func.count()).select_from(ScoreEvent)) == events


def test_the_repeated_item_is_stored_once_and_untagged_items_not_at_all(service: Service) -> None:
    result = service.run_cycle(NOW)

    with service.sessions() as session:
        titles = session.scalars(select(Article.title)).all()
    assert titles.count("$AAPL shares surge after record profit") == 1
    assert "Markets drift ahead of the holiday" not in titles
    assert result.ingest.untagged >= 1


def test_history_lists_events_oldest_first_in_range(service: Service) -> None:
    service.run_cycle(NOW)
    app = TestApp(service.app())

    body = app.get(
        "/v1/scores/history",
        {"ticker": "AAPL", "from": "2020-01-01", "limit": "5000"},
        headers=AUTH,
    ).json

    assert body["data"], "the AAPL feed and the wire both tag AAPL"
    scored = [(d["scored_at"]) for d in body["data"]]
    assert scored == sorted(scored)
    first = body["data"][0]
    assert set(first) >= {"label", "score", "probabilities", "scored_at", "article"}
    assert set(first["article"]) >= {"headline", "url"}
    empty = app.get("/v1/scores/history", {"ticker": "AAPL", "to": "2020-01-01"}, headers=AUTH).json
    assert empty["data"] == []


def test_a_stop_request_leaves_the_rest_pending(service: Service) -> None:
    service.stopping.set()
    result = service.run_cycle(NOW)

    assert result.score is not None and result.score.events == 0 and result.score.more
    service.stopping.clear()
    assert service.run_cycle(NOW).score.events > 0  # type: ignore[union-attr]


def test_the_permuted_model_gives_the_same_labels_and_scores(
    tiny_model,
    permuted_model,  # type: ignore[no-untyped-def]
) -> None:
    texts = [
        ("$AAPL shares surge after record profit", "Analysts upgrade the stock."),
        ("Tesla stock plunges on recall", ""),
        ("Microsoft beats earnings", ""),
        ("Nvidia shares fall amid investigation", ""),
        ("Meta cuts guidance", ""),
    ]
    plain = TransformersClassifier(str(tiny_model), None, threads=1)
    permuted = TransformersClassifier(str(permuted_model), None, threads=1)

    assert plain.labels != permuted.labels
    a, b = predict_articles(plain, texts), predict_articles(permuted, texts)
    assert [p.label for p in a] == [p.label for p in b]
    assert len({p.label for p in a}) > 1, "the tiny model must tell texts apart"
    for x, y in zip(a, b, strict=True):
        assert x.score == pytest.approx(y.score, abs=1e-6)


def test_run_once_prints_what_it_did(
    settings: Settings,
    feed_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scorer.process.cli import main

    wire = feed_server.serve_file("/wire.xml", "watchlist_news.xml")
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "FEEDS": wire,
        "FINBERT_MODEL": settings.finbert_model,
        "TICKERS": "AAPL,TSLA",
        "MODEL_THREADS": "1",
    }.items():
        monkeypatch.setenv(name, value)

    assert main(["run-once"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ingest"]["new"] == 2 and out["score"]["events"] == 2


def test_each_job_of_a_cycle_checks_in_to_sentry_crons(service: Service) -> None:
    from typing import Any

    from scorer.market.crons import CronReporter

    sent: list[tuple[str, str]] = []

    def capture(**kwargs: Any) -> str:
        sent.append((kwargs["monitor_slug"], kwargs["status"]))
        return "id"

    service.crons = CronReporter(service.settings.window, 300, capture)
    service.run_cycle(NOW)

    assert sent == [
        ("reasonator-ingest", "in_progress"),
        ("reasonator-ingest", "ok"),
        ("reasonator-score", "in_progress"),
        ("reasonator-score", "ok"),
    ]
