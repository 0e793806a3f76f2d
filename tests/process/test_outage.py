"""The jobs through a database outage: a cycle stops at the first failed statement
without raising, backs off, and the next cycle after the database returns finishes
the work. Nothing a feed still lists is lost, nothing is scored twice."""

from __future__ import annotations

from dataclasses import replace
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
from sqlalchemy import func, select

from scorer.config.settings import Settings
from scorer.ingest.sources import FeedSpec
from scorer.process.service import Backoff, Service
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.tables import ArticleTicker, Feed, ScoreEvent
from tests.helpers.feed_server import StubServer, reply
from tests.helpers.outage import Outage

ITEMS = 12


def _feed() -> bytes:
    items = "".join(
        f"<item><title>$AAPL news {i}</title><link>https://x.test/{i}</link></item>"
        for i in range(ITEMS)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel>{items}</channel></rss>'.encode()


def _service(settings: Settings, url: str, classifier: Any) -> Service:
    settings = replace(settings, feeds=(FeedSpec(url=url, ticker=None),), score_batch_size=4)
    return Service(settings, loader=ModelLoader.loaded(classifier))


def _counts(sessions) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        pairs = session.scalar(select(func.count()).select_from(ArticleTicker)) or 0
        events = session.scalar(select(func.count()).select_from(ScoreEvent)) or 0
        distinct = session.scalar(
            select(func.count()).select_from(
                select(ScoreEvent.article_id, ScoreEvent.ticker).distinct().subquery()
            )
        )
    return pairs, events, distinct or 0


def test_a_feed_fetched_while_the_database_went_away_is_fetched_again(
    settings: Settings,
    sessions,
    database_url: str,
    feed_server: StubServer,  # type: ignore[no-untyped-def]
) -> None:
    classifier = TransformersClassifier(settings.finbert_model, None, threads=1)
    service = _service(settings, feed_server.url("/wire.xml"), classifier)
    down = Outage(database_url, service.engine)
    body = reply(_feed(), headers={"ETag": '"v1"'})
    seen: list[str | None] = []

    def wire(handler: BaseHTTPRequestHandler) -> None:
        seen.append(handler.headers.get("If-None-Match"))
        if len(seen) == 1:
            down.start()  # the database goes away between the fetch and the store
        if handler.headers.get("If-None-Match") == '"v1"':
            reply(b"", status=304)(handler)  # had the ETag been saved, the items were lost
        else:
            body(handler)

    feed_server.routes["/wire.xml"] = wire
    try:
        failed = service.run_cycle()
        assert failed.outage is not None and failed.score is None
        assert service.backoff.failures == 1
    finally:
        down.end()
    service.engine.dispose()  # SQLite: reopen the file that came back

    resumed = service.run_cycle()
    service.stop()
    assert resumed.outage is None and service.backoff.failures == 0
    assert seen == [None, None], "the second fetch must not send the unsaved ETag"
    assert resumed.ingest.new == ITEMS and resumed.score is not None
    assert _counts(sessions) == (ITEMS, ITEMS, ITEMS)
    with sessions() as session:
        assert session.scalar(select(Feed.etag)) == '"v1"'


class _DiesAfter:
    """A classifier that takes the database away after ``batches`` model calls."""

    def __init__(self, inner: TransformersClassifier, batches: int, outage: Outage) -> None:
        self.inner, self.left, self.outage = inner, batches, outage
        self.model_id, self.revision, self.labels = inner.model_id, inner.revision, inner.labels

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.left -= 1
        if self.left == 0:
            self.outage.start()
        return self.inner.predict_proba(texts)


def test_scoring_cut_off_by_an_outage_resumes_without_losing_or_doubling(
    settings: Settings,
    sessions,
    database_url: str,
    feed_server: StubServer,  # type: ignore[no-untyped-def]
) -> None:
    feed_server.routes["/wire.xml"] = reply(_feed())
    inner = TransformersClassifier(settings.finbert_model, None, threads=1)
    service = _service(settings, feed_server.url("/wire.xml"), inner)
    down = Outage(database_url, service.engine)
    # One model call per batch of 4 pairs (3 batches): the database goes during the second.
    service.loader.classifier = _DiesAfter(inner, 2, down)  # type: ignore[assignment]
    try:
        cut = service.run_cycle()
        assert cut.outage is not None
    finally:
        down.end()
    service.engine.dispose()
    pairs, events, _ = _counts(sessions)
    assert pairs == ITEMS and 0 < events < ITEMS, "committed batches stay, the rest pending"

    service.loader.classifier = inner
    assert service.run_cycle().outage is None
    service.stop()
    assert _counts(sessions) == (ITEMS, ITEMS, ITEMS)


def test_the_backoff_doubles_up_to_the_poll_interval_and_resets() -> None:
    backoff = Backoff(first=15, most=300)
    assert [backoff.failed() for _ in range(7)] == [15, 30, 60, 120, 240, 300, 300]
    backoff.succeeded()
    assert backoff.failed() == 15
