"""``GET /v1/articles``: scored articles, newest first, each with its score per ticker,
paged by an opaque cursor that neither skips nor repeats rows while new ones arrive."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import bottle
from sqlalchemy import Engine, Row, and_, exists, or_, select

from scorer.api import params
from scorer.api.http import BadRequest, dumps, etag_of, iso, send
from scorer.api.stamp import StampReader
from scorer.config.settings import Settings
from scorer.scoring.model.base import LABELS
from scorer.storage.tables import Article, ArticleTicker, ScoreEvent

DEFAULT_LIMIT, MAX_LIMIT = 50, 200


SPEC = params.Spec(
    (
        params.ticker("ticker", "only articles scored for this ticker"),
        params.instant("from", "only articles published at or after this instant"),
        params.instant("to", "only articles published at or before this instant"),
        params.choice(
            "label",
            "only articles with a score of this label (for `ticker` if given)",
            LABELS,
            fold_case=True,
        ),
        params.unit(
            "min_relevance",
            "0 to 1: only scores of tickers tagged with at least this relevance (default 0)",
        ),
        params.whole(
            "limit",
            f"articles per page (default {DEFAULT_LIMIT})",
            low=1,
            high=MAX_LIMIT,
            default=DEFAULT_LIMIT,
        ),
        params.cursor("cursor", "next_cursor of the previous page, as it is"),
    )
)


def install(
    app: bottle.Bottle, settings: Settings, engine: Engine, stamps: StampReader | None = None
) -> None:
    cursors = Cursors((settings.service_token or "").encode())
    pages = Pages(stamps or StampReader(engine))

    @app.get("/v1/articles", params=SPEC)
    def articles(query: params.Query) -> str:
        start, end = query["from"], query["to"]
        if start is not None and end is not None and start > end:
            raise BadRequest("'from' must not be after 'to'")
        key = tuple(query[name] for name in SPEC.names)
        body, etag = pages.get(key, lambda: render(query))
        return send(body, cache=True, etag=etag)

    def render(query: params.Query) -> str:
        ticker, start, end = query["ticker"], query["from"], query["to"]
        label, least, limit = query["label"], query["min_relevance"], query["limit"]
        after = cursors.decode(query["cursor"]) if query["cursor"] is not None else None

        # Which articles: those with a score (for the ticker, with the label) in range.
        scored = [ScoreEvent.article_id == Article.id]
        scored += [ScoreEvent.ticker == ticker] if ticker else []
        scored += [_TAG_OF_EVENT, ArticleTicker.relevance >= least] if least > 0 else []
        scored += [ScoreEvent.label == label] if label else []
        stmt = select(Article.id, Article.title, Article.url, Article.source, Article.published_at)
        stmt = stmt.where(exists().where(*scored))
        stmt = stmt.where(Article.published_at >= start) if start else stmt
        stmt = stmt.where(Article.published_at <= end) if end else stmt
        if after is not None:  # keyset: strictly after the last row of the previous page
            at, last_id = after
            stmt = stmt.where(
                or_(
                    Article.published_at < at,
                    and_(Article.published_at == at, Article.id < last_id),
                )
            )
        stmt = stmt.order_by(Article.published_at.desc(), Article.id.desc()).limit(limit + 1)
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
            page = rows[:limit]
            scores = _scores(conn, [row.id for row in page], least)
        more = len(rows) > limit
        return dumps(
            {
                "data": [_article_json(row, scores.get(row.id, [])) for row in page],
                "limit": limit,
                "next_cursor": cursors.encode(page[-1].published_at, page[-1].id) if more else None,
            }
        )


class Pages:
    """Rendered pages (body and ETag) by their parameters, kept for the stamp they were
    rendered under (``StampReader``: the newest score event id, read by every request
    from a read begun after the request began). An article is listed once it has a
    score, and every score is a new event with a higher id, so a newly scored or
    re-scored article changes the stamp and the next request renders again. What the
    stamp cannot show — an out-of-order commit of two writers on Postgres, articles
    deleted by retention — is bounded by ``max_age``, as for latest."""

    def __init__(
        self,
        stamps: StampReader,
        max_age: float = 2.0,
        max_pages: int = 1_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stamps, self._max_age, self._max_pages, self._clock = (
            stamps,
            max_age,
            max_pages,
            clock,
        )
        self._state: tuple[Any, float, dict[tuple[Any, ...], tuple[str, str]]] = (
            None,
            -max_age - 1.0,
            {},
        )

    def get(self, key: tuple[Any, ...], render: Callable[[], str]) -> tuple[str, str]:
        """(body, ETag) of the page ``key``; ``render`` makes its body on a miss."""
        stamp = self._stamps.read()  # before the rows: what is rendered is at least as new
        now = self._clock()
        state = self._state
        kept, since, bodies = state
        if kept != stamp or now - since > self._max_age or len(bodies) > self._max_pages:
            state = self._state = (stamp, now, {})
            bodies = state[2]
        hit = bodies.get(key)
        if hit is not None:
            return hit
        body = render()
        entry = (body, etag_of(body))
        if self._state is state:  # not for a stamp that moved on meanwhile
            bodies[key] = entry
        return entry


# The tag an event scores: its (article, ticker) row, which holds the relevance.
_TAG_OF_EVENT = and_(
    ArticleTicker.article_id == ScoreEvent.article_id, ArticleTicker.ticker == ScoreEvent.ticker
)


def _scores(conn: Any, ids: list[int], least: float) -> dict[int, list[dict[str, Any]]]:
    """Per article, the newest score event of each of its tickers tagged with at least
    ``least`` relevance (the newest revision's when re-scored), ordered by ticker."""
    if not ids:
        return {}
    stmt = (
        select(ScoreEvent.__table__, ArticleTicker.relevance, ArticleTicker.tagged_by)
        .join_from(ScoreEvent, ArticleTicker, _TAG_OF_EVENT)
        .where(ScoreEvent.article_id.in_(ids), ArticleTicker.relevance >= least)
        .order_by(ScoreEvent.id)
    )
    newest: dict[tuple[int, str], Row[Any]] = {}
    for row in conn.execute(stmt):
        newest[(row.article_id, row.ticker)] = row  # later ids replace earlier ones
    out: dict[int, list[dict[str, Any]]] = {}
    for (article_id, _), row in sorted(newest.items()):
        out.setdefault(article_id, []).append(ticker_score_json(row))
    return out


def ticker_score_json(row: Row[Any]) -> dict[str, Any]:
    """One ticker's score of an article, with how central the ticker is to it, how it
    was made (``method``; ``scope`` "ticker": from the text about the ticker, "article":
    the article's, the text not naming it) and the segments that moved it."""
    return {
        "ticker": row.ticker,
        "label": row.label,
        "score": round(row.score, 6),
        "probabilities": {
            "positive": round(row.p_positive, 6),
            "negative": round(row.p_negative, 6),
            "neutral": round(row.p_neutral, 6),
        },
        "scored_at": iso(row.scored_at),
        "model": {"id": row.model_id, "revision": row.model_revision},
        "method": row.method,
        "scope": row.scope,
        "highlights": json.loads(row.highlights) if row.highlights else [],
        "relevance": round(row.relevance, 3),
        "tagged_by": row.tagged_by,
    }


def _article_json(row: Any, tickers: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "headline": row.title,
        "url": row.url,
        "source": row.source,
        "published_at": iso(row.published_at),
        "tickers": tickers,
    }


class Cursors:
    """Opaque page cursors: base64url of the last row's position (published_at, id)
    and a keyed checksum, so a cursor this API did not issue is a 400, not a query."""

    def __init__(self, key: bytes) -> None:
        self._key = hashlib.sha256(b"reasonator-cursor:" + key).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:12]

    def encode(self, published_at: datetime, article_id: int) -> str:
        payload = json.dumps([iso(published_at), article_id], separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(self._sign(payload) + payload).decode().rstrip("=")

    def decode(self, raw: str | None) -> tuple[datetime, int]:
        bad = BadRequest("'cursor' is not a cursor this API issued: use next_cursor as it is")
        text = (raw or "").strip()
        try:
            blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise bad from None
        sig, payload = blob[:12], blob[12:]
        if len(text) > 200 or not hmac.compare_digest(sig, self._sign(payload)):
            raise bad
        try:
            stamp, article_id = json.loads(payload)
            return datetime.fromisoformat(stamp), int(article_id)
        except (ValueError, TypeError):
            raise bad from None
