"""Score: take pending (article, ticker) pairs from the database, score them in
batches, and store one score event per pair, model revision and scoring method: each
ticker's from the clauses about it, with its highlights."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs.job import Context, Job, Schedule
from scorer.ingest.tagging import Tagger, tagger_for
from scorer.scoring.cache import SentenceCache
from scorer.scoring.model import Classifier
from scorer.scoring.sentiment import METHOD, Mentions, highlights_json, score_articles
from scorer.storage.store import claim_pending, finish_jobs, pending_pairs, store_scores
from scorer.storage.tables import Article, ArticleTicker


@dataclass
class ScoreResult:
    articles: int = 0  # distinct articles run through the model
    events: int = 0  # score events stored
    batches: int = 0
    more: bool = False  # stopped with work left (stop requested)


def score_pending(
    sessions: sessionmaker[Session],
    classifier: Classifier,
    *,
    now: Callable[[], datetime],
    batch_size: int = 64,
    stop: threading.Event | None = None,
    cache: SentenceCache | None = None,
    tagger: Tagger | None = None,
    scored_by: str | None = None,
) -> ScoreResult:
    """Score pending pairs batch by batch; each batch commits on its own. Sentences
    the ``cache`` holds for this model revision skip the model. ``tagger`` finds the
    tickers each text names (default: one over the batch's tickers). ``scored_by``
    names this process in each event.

    Several workers may run this at once on Postgres: each batch is claimed
    (``store.claim_pending``), so no pair is scored by two of them.

    A crash or SIGTERM mid-batch loses only that uncommitted batch, which is still
    pending next time; the unique constraint makes a repeated insert a no-op.
    """
    result = ScoreResult()
    model_id, revision = classifier.model_id, classifier.revision
    queue = pending_pairs(model_id, revision, METHOD)
    while True:
        if stop is not None and stop.is_set():
            with sessions() as session:
                result.more = session.execute(queue.limit(1)).first() is not None
            return result
        with sessions.begin() as session:
            # The claim holds until this transaction commits with the batch's events.
            pairs, claimed = claim_pending(session, model_id, revision, METHOD, batch_size)
            if not pairs:
                if claimed:
                    continue  # another worker scored them meanwhile: claim again
                # Pairs still pending now are claimed by other workers: theirs to
                # finish. Only with none left at all are the re-score jobs done.
                if session.execute(queue.limit(1)).first() is None:
                    finish_jobs(session, model_id, revision, now(), METHOD)
                return result
            result.events += _score_batch(
                session, classifier, pairs, now=now, cache=cache, tagger=tagger, by=scored_by
            )
            result.articles += len({article_id for article_id, _ in pairs})
            result.batches += 1


def _score_batch(
    session: Session,
    classifier: Classifier,
    pairs: list[tuple[int, str]],
    *,
    now: Callable[[], datetime],
    cache: SentenceCache | None,
    tagger: Tagger | None,
    by: str | None,
) -> int:
    """One model pass over the pairs' articles; store their events in ``session``."""
    ids = sorted({article_id for article_id, _ in pairs})
    articles = {a.id: a for a in session.scalars(select(Article).where(Article.id.in_(ids)))}
    texts = [(articles[i].title, articles[i].summary) for i in ids]
    found = score_articles(classifier, texts, _mentions(session, tagger, ids), cache)
    scores = dict(zip(ids, found, strict=True))
    scored_at = now()
    rows = []
    for article_id, ticker in pairs:
        prediction = scores[article_id].for_ticker(ticker)
        rows.append(
            {
                "article_id": article_id,
                "ticker": ticker,
                "model_id": classifier.model_id,
                "model_revision": classifier.revision,
                "method": METHOD,
                "scope": prediction.scope,
                "label": prediction.label,
                "score": prediction.score,
                "p_positive": prediction.p_positive,
                "p_negative": prediction.p_negative,
                "p_neutral": prediction.p_neutral,
                "sentences": prediction.sentences,
                "highlights": json.dumps(highlights_json(prediction), separators=(",", ":")),
                "published_at": articles[article_id].published_at,
                "scored_at": scored_at,
                "scored_by": by,
            }
        )
    return store_scores(session, rows)


def _mentions(session: Session, tagger: Tagger | None, ids: list[int]) -> list[Mentions]:
    """Per article, the tickers a text names, as (ticker, start, end), from ``tagger``,
    else from a tagger over the batch's tags (a tag's ticker may have left the
    watchlist). The article's tags confirm their own ambiguous names ("Target" in a
    TGT feed's headline), as they did when the item was tagged."""
    tags: dict[int, set[str]] = {i: set() for i in ids}
    rows = session.execute(
        select(ArticleTicker.article_id, ArticleTicker.ticker).where(
            ArticleTicker.article_id.in_(ids)
        )
    )
    for article_id, ticker in rows:
        tags[article_id].add(ticker)
    found = tagger or tagger_for(frozenset().union(*tags.values()))
    return [found.finder(tags[i]) for i in ids]


def _run(context: Context, now: datetime) -> ScoreResult:
    classifier = context.classifier
    assert classifier is not None  # needs_model: the process runs it only once loaded
    return score_pending(
        context.sessions,
        classifier,
        now=_utcnow,
        batch_size=context.settings.score_batch_size,
        stop=context.stopping,
        cache=context.sentence_cache,
        scored_by=context.name,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)  # each batch's own time: a long backlog spans minutes


JOB = Job("score", Schedule.CYCLE, _run, needs_model=True, monitor="reasonator-score")
