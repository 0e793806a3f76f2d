"""``GET /v1/articles``: scored articles, newest first, each with its score per ticker,
paged by an opaque cursor that neither skips nor repeats rows while new ones arrive."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import bottle
from sqlalchemy import Engine, Row, Select, and_, bindparam, exists, select, tuple_

from scorer.api import params
from scorer.api.http import BadRequest, dumps, etag_of, iso, send
from scorer.api.stamp import StampReader
from scorer.config.settings import Settings
from scorer.scoring.model.base import LABELS
from scorer.storage.tables import SHOWN, Article, ArticleTicker, ScoreEvent, UTCDateTime

DEFAULT_LIMIT, MAX_LIMIT = 50, 200
# Articles per page, here and in a bucket's drill-down (scorer/api/drilldown.py).
LIMIT = params.whole(
    "limit",
    f"articles per page (default {DEFAULT_LIMIT})",
    low=1,
    high=MAX_LIMIT,
    default=DEFAULT_LIMIT,
)


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
        LIMIT,
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
        stmt = _page_statement(
            bool(ticker), least > 0, bool(label), start is not None, end is not None, bool(after)
        )
        bound: dict[str, Any] = {"n": limit + 1, "least": least}
        bound |= {"ticker": ticker, "label": label, "start": start, "end": end}
        if after is not None:
            bound["at"], bound["last_id"] = after
        with engine.connect() as conn:
            rows = conn.execute(stmt, bound).all()
        page, scores = _grouped(rows, limit)
        more = len(page) > limit
        page = page[:limit]
        return dumps(
            {
                "data": [_article_json(row, scores[row.id]) for row in page],
                "limit": limit,
                "next_cursor": cursors.encode(page[-1].published_at, page[-1].id) if more else None,
            }
        )


# The tag an event scores: its (article, ticker) row, which holds the relevance.
_TAG_OF_EVENT = and_(
    ArticleTicker.article_id == ScoreEvent.article_id, ArticleTicker.ticker == ScoreEvent.ticker
)
_EVENT = ScoreEvent.__table__.alias("event")
_TAG = ArticleTicker.__table__.alias("tag")


@lru_cache(maxsize=64)
def _page_statement(
    ticker: bool, filtered: bool, label: bool, start: bool, end: bool, after: bool
) -> Select[Any]:
    """One statement per shape of query, built and compiled once: the page's articles
    (those with a score, for the ticker, with the label, in range; newest first; one
    more than the page to tell whether another follows), each joined to its score
    events whose tag has at least the relevance, oldest event first. One round trip."""
    scored = [ScoreEvent.article_id == Article.id]
    scored += [ScoreEvent.ticker == bindparam("ticker")] if ticker else []
    scored += [_TAG_OF_EVENT, ArticleTicker.relevance >= bindparam("least")] if filtered else []
    scored += [ScoreEvent.label == bindparam("label")] if label else []
    stmt = select(Article.id, Article.title, Article.url, Article.source, Article.published_at)
    stmt = stmt.where(exists().where(*scored))
    if start:
        stmt = stmt.where(Article.published_at >= bindparam("start", type_=UTCDateTime()))
    if end:
        stmt = stmt.where(Article.published_at <= bindparam("end", type_=UTCDateTime()))
    if after:  # keyset: strictly after the last row of the previous page
        stmt = stmt.where(
            tuple_(Article.published_at, Article.id)
            < tuple_(bindparam("at", type_=UTCDateTime()), bindparam("last_id"))
        )
    order = (Article.published_at.desc(), Article.id.desc())
    page = stmt.order_by(*order).limit(bindparam("n")).cte("page")
    event, tag = _EVENT.c, _TAG.c
    return (
        select(
            page.c.id,
            page.c.title,
            page.c.url,
            page.c.source,
            page.c.published_at,
            event.id.label("event_id"),
            *(event[name] for name in SHOWN),
            tag.relevance,
            tag.tagged_by,
        )
        .select_from(page)
        .outerjoin(_EVENT, event.article_id == page.c.id)
        .outerjoin(
            _TAG,
            (tag.article_id == event.article_id)
            & (tag.ticker == event.ticker)
            & (tag.relevance >= bindparam("least")),
        )
        .order_by(page.c.published_at.desc(), page.c.id.desc(), event.id)
    )


def _grouped(
    rows: Sequence[Row[Any]], limit: int
) -> tuple[list[Row[Any]], dict[int, list[dict[str, Any]]]]:
    """The page's articles in order (a row each) and, per article, the newest score
    event of each of its tickers tagged with at least the relevance (the newest
    revision's when re-scored), ordered by ticker."""
    page: list[Row[Any]] = []
    newest: dict[int, dict[str, Row[Any]]] = {}
    for row in rows:
        events = newest.get(row.id)
        if events is None:
            if len(page) > limit:
                break
            page.append(row)
            events = newest[row.id] = {}
        if row.event_id is not None and row.relevance is not None:
            events[row.ticker] = row  # later ids replace earlier ones
    scores = {
        article_id: [ticker_score_json(events[t]) for t in sorted(events)]
        for article_id, events in newest.items()
    }
    return page, scores


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


def article_head(row: Any) -> dict[str, Any]:
    """What every listing shows of an article itself, before its scores."""
    return {
        "id": row.id,
        "headline": row.title,
        "url": row.url,
        "source": row.source,
        "published_at": iso(row.published_at),
    }


def _article_json(row: Any, tickers: list[dict[str, Any]]) -> dict[str, Any]:
    return {**article_head(row), "tickers": tickers}


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
