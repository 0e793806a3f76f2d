"""Re-scoring under a new revision: queued as a job, done by the score job, never twice."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from sqlalchemy import func, select

from jobs.score import score_pending
from scorer.ingest.items import FeedItem
from scorer.ingest.tickers import tags_of
from scorer.storage.store import open_jobs, queue_depth, queue_rescore, store_items
from scorer.storage.tables import BatchScoreJob, ScoreEvent

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)


class FixedClassifier:
    """A stand-in model: always the same probabilities, under a given revision."""

    def __init__(self, revision: str, probs: tuple[float, float, float]) -> None:
        self.labels = ["positive", "negative", "neutral"]
        self.model_id, self.revision, self._probs = "test/model", revision, probs

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.tile(np.array(self._probs), (len(texts), 1))


def _items(n: int, day: int) -> list[FeedItem]:
    published = datetime(2026, 11, day, 15, tzinfo=UTC)
    return [
        FeedItem(
            dedup_key=f"d{day}-{i}",
            title=f"News {i}",
            summary="",
            url=None,
            published_at=published,
            source="Wire",
            tags=tags_of({"AAPL", "MSFT"}),
        )
        for i in range(n)
    ]


def _events(sessions, revision: str) -> int:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ScoreEvent)
                .where(ScoreEvent.model_revision == revision)
            )
            or 0
        )


def test_a_new_revision_scores_new_news_but_not_history_unasked(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        store_items(session, _items(3, 20), now=NOW)
    score_pending(sessions, FixedClassifier("v1", (0.8, 0.1, 0.1)), now=lambda: NOW)

    v2 = FixedClassifier("v2", (0.1, 0.8, 0.1))
    assert score_pending(sessions, v2, now=lambda: NOW).events == 0
    assert _events(sessions, "v1") == 6 and _events(sessions, "v2") == 0


def test_rescore_queues_the_range_and_scores_each_pair_once(sessions) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        store_items(session, _items(3, 20) + _items(2, 24), now=NOW)
    score_pending(sessions, FixedClassifier("v1", (0.8, 0.1, 0.1)), now=lambda: NOW)
    since = datetime(2026, 11, 22, tzinfo=UTC)

    with sessions.begin() as session:
        job = queue_rescore(session, "test/model", "v2", since=since, until=None, now=NOW)
        assert job.pairs == 4  # 2 articles x 2 tickers published since the 22nd
    with sessions.begin() as session:  # asked twice: nothing more to do twice
        queue_rescore(session, "test/model", "v2", since=since, until=None, now=NOW)
        assert queue_depth(session, "test/model", "v2") == 4 and open_jobs(session) == 2

    v2 = FixedClassifier("v2", (0.1, 0.8, 0.1))
    first = score_pending(sessions, v2, now=lambda: NOW, batch_size=3)
    again = score_pending(sessions, v2, now=lambda: NOW)

    assert first.events == 4 and again.events == 0
    assert _events(sessions, "v1") == 10 and _events(sessions, "v2") == 4
    with sessions() as session:
        assert open_jobs(session) == 0
        assert {j.status for j in session.scalars(select(BatchScoreJob))} == {"done"}


def test_rescore_command_prints_the_job(sessions, settings, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from scorer.process.cli import main

    with sessions.begin() as session:
        store_items(session, _items(2, 24), now=NOW)
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FINBERT_MODEL", "test/model")
    monkeypatch.setenv("FINBERT_MODEL_SHA", "v2")

    assert main(["rescore", "--since", "2026-11-01"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_revision"] == "v2" and out["pairs"] == 4


class WordClassifier:
    """A stand-in model that reads: "falls" is negative, "soars" positive."""

    model_id, revision = "test/model", "v1"

    def __init__(self) -> None:
        self.labels = ["positive", "negative", "neutral"]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        rows = {True: (0.05, 0.9, 0.05), False: (0.9, 0.05, 0.05)}
        return np.array([rows["falls" in t] for t in texts])


def test_rescore_redoes_history_scored_the_old_way_under_todays_method(sessions) -> None:  # type: ignore[no-untyped-def]
    from scorer.ingest.tagging import tagger_for
    from scorer.scoring.sentiment import ARTICLE_METHOD, METHOD

    tagger = tagger_for(frozenset({"TSLA", "F"}))
    title = "Tesla falls after a recall, while Ford soars on EV sales"
    item = FeedItem("k1", title, "", None, NOW, "Wire", tagger.tag(title, ""))
    with sessions.begin() as session:
        store_items(session, [item], now=NOW)
    score_pending(sessions, WordClassifier(), now=lambda: NOW, tagger=tagger)
    with sessions.begin() as session:  # as the migration marks events made before clauses
        session.execute(ScoreEvent.__table__.update().values(method=ARTICLE_METHOD))

    assert score_pending(sessions, WordClassifier(), now=lambda: NOW, tagger=tagger).events == 0
    with sessions.begin() as session:
        job = queue_rescore(session, "test/model", "v1", since=NOW, until=None, now=NOW)
        assert job.pairs == 2
    assert score_pending(sessions, WordClassifier(), now=lambda: NOW, tagger=tagger).events == 2

    with sessions() as session:
        rows = session.execute(
            select(ScoreEvent.ticker, ScoreEvent.method, ScoreEvent.label, ScoreEvent.scope)
        ).all()
    assert sorted(rows) == [
        ("F", ARTICLE_METHOD, "positive", "ticker"),
        ("F", METHOD, "positive", "ticker"),
        ("TSLA", ARTICLE_METHOD, "negative", "ticker"),
        ("TSLA", METHOD, "negative", "ticker"),
    ]
