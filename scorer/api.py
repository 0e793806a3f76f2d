"""The read API (Bottle): public health, bearer-protected scores."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import bottle
from sqlalchemy import Engine, Row, Select, bindparam, func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.score import open_jobs, queue_depth
from scorer import __version__
from scorer.config import Settings
from scorer.db import as_utc
from scorer.feeds import TICKER_RE
from scorer.loader import ModelLoader
from scorer.models import Article, ScoreEvent

log = logging.getLogger(__name__)

MAX_TICKERS = 50
HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT = 500, 5_000
HISTORY_DEFAULT_SPAN = timedelta(days=7)


class BadRequest(Exception):
    """A query parameter is missing or malformed: a 400 naming it."""


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    loader: ModelLoader,
    role: Callable[[], str] = lambda: "scheduler",
    clock: Callable[[], float] = time.monotonic,
) -> bottle.Bottle:
    """Build the WSGI app. Nothing here touches the network or loads a model."""
    app = bottle.Bottle()
    app.config["json.enable"] = False  # every route serialises itself (ETags need the bytes)
    started = clock()
    depth = _CachedDepth(sessions)
    # The score reads use Core on a plain connection: a Session and ORM entities cost
    # more than the queries themselves here.
    with sessions() as session:
        engine = session.get_bind()
    assert isinstance(engine, Engine)
    latest_items = _LatestCache(engine)

    @app.get("/v1/health")
    def health() -> str:
        bottle.response.set_header("Cache-Control", "no-store")
        if not loader.ready or loader.classifier is None:
            body: dict[str, Any] = {"status": "warming_up", "model_loaded": False}
            if loader.reason:
                body["reason"] = loader.reason
            return _json(body, status=503)
        classifier = loader.classifier
        return _json(
            {
                "status": "ok",
                "model_loaded": True,
                "model_id": classifier.model_id,
                "model_sha": classifier.revision,
                "queue_depth": depth.get(classifier.model_id, classifier.revision),
                "uptime_seconds": int(clock() - started),
                "version": __version__,
                "env": settings.env,
                "flag_reasonator": settings.flag_reasonator,
                "role": role(),
            }
        )

    @app.get("/v1/scores/latest")
    def latest() -> str:
        _authorize(settings)
        tickers = _tickers(bottle.request.query.get("tickers"))
        items = latest_items.get(tickers)
        # Assembled from per-ticker JSON texts: the same bytes as _json would write.
        data = ",".join(text for text in items.values() if text is not None)
        missing = _dumps([t for t, text in items.items() if text is None])
        return _send(f'{{"data":[{data}],"missing":{missing}}}', cache=True)

    @app.get("/v1/scores/history")
    def history() -> str:
        _authorize(settings)
        query = bottle.request.query
        ticker = _ticker(query.get("ticker"))
        end = _instant("to", query.get("to")) or datetime.now(UTC)
        start = _instant("from", query.get("from")) or end - HISTORY_DEFAULT_SPAN
        if start > end:
            raise BadRequest("'from' must not be after 'to'")
        limit = _limit(query.get("limit"))
        stmt = (
            _EVENTS.where(
                ScoreEvent.ticker == ticker,
                ScoreEvent.scored_at >= start,
                ScoreEvent.scored_at <= end,
            )
            .order_by(ScoreEvent.scored_at, ScoreEvent.id)
            .limit(limit + 1)
        )
        with engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return _json(
            {
                "ticker": ticker,
                "from": _iso(start),
                "to": _iso(end),
                "limit": limit,
                "truncated": len(rows) > limit,
                "data": [_event_json(row) for row in rows[:limit]],
            },
            cache=True,
        )

    @app.error(400)
    @app.error(401)
    @app.error(404)
    @app.error(405)
    @app.error(500)
    def error(err: bottle.HTTPError) -> str:
        # A 500's traceback is already written to the server's error log by Bottle and
        # reported by Sentry's Bottle integration; the client gets no detail.
        message = err.body if isinstance(err.body, str) and err.status_code < 500 else None
        bottle.response.content_type = "application/json"
        return json.dumps(
            {"error": _ERRORS.get(err.status_code, "error"), "message": message or err.status_line}
        )

    app.install(_bad_request_plugin)
    return app


_ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    500: "internal_error",
}


def _bad_request_plugin(callback: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except BadRequest as exc:
            return _json({"error": "bad_request", "message": str(exc)}, status=400)

    return wrapper


def _authorize(settings: Settings) -> None:
    header = bottle.request.get_header("Authorization") or ""
    scheme, _, token = header.partition(" ")
    expected = settings.service_token
    # compare_digest: the time taken must not tell how much of the token matched.
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(token.strip().encode(), expected.encode())
    ):
        raise bottle.HTTPError(
            401,
            "a valid bearer token is required",
            **{"WWW-Authenticate": 'Bearer realm="reasonator"'},
        )


def _ticker(raw: str | None, name: str = "ticker") -> str:
    value = (raw or "").strip().upper()
    if not value:
        raise BadRequest(f"'{name}' is required")
    if not TICKER_RE.match(value):
        raise BadRequest(f"'{name}' has a malformed ticker: {value[:20]!r}")
    return value


def _tickers(raw: str | None) -> list[str]:
    if not (raw or "").strip():
        raise BadRequest("'tickers' is required: a comma-separated list such as AAPL,MSFT")
    tickers = list(dict.fromkeys(_ticker(t, "tickers") for t in (raw or "").split(",")))
    if len(tickers) > MAX_TICKERS:
        raise BadRequest(f"'tickers' may name at most {MAX_TICKERS} tickers")
    return tickers


def _instant(name: str, raw: str | None) -> datetime | None:
    """ISO 8601 date or date-time; no offset means UTC."""
    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadRequest(
            f"'{name}' must be an ISO 8601 date or date-time, got {raw[:40]!r}"
        ) from None
    return as_utc(value)


def _limit(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return HISTORY_DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'limit' must be a whole number, got {raw[:20]!r}") from None
    if not 1 <= value <= HISTORY_MAX_LIMIT:
        raise BadRequest(f"'limit' must be between 1 and {HISTORY_MAX_LIMIT}")
    return value


# What an item of "latest" and "history" shows: the event joined to its article.
_EVENTS = select(
    ScoreEvent.ticker,
    ScoreEvent.label,
    ScoreEvent.score,
    ScoreEvent.p_positive,
    ScoreEvent.p_negative,
    ScoreEvent.p_neutral,
    ScoreEvent.scored_at,
    ScoreEvent.model_id,
    ScoreEvent.model_revision,
    Article.title,
    Article.url,
    Article.source,
    Article.published_at,
).join_from(ScoreEvent, Article, Article.id == ScoreEvent.article_id)


@lru_cache(maxsize=MAX_TICKERS)
def _latest(count: int) -> Select[*tuple[Any, ...]]:
    """One statement for ``count`` tickers: per ticker, the id of the score of its newest
    news (one seek on ix_score_events_ticker_published; the newest revision's if
    re-scored), then those events with their articles by primary key. One round trip
    instead of one per ticker; cached per count so it is built and compiled once."""
    newest = [
        select(ScoreEvent.id)
        .where(ScoreEvent.ticker == bindparam(f"t{i}"))
        .order_by(ScoreEvent.published_at.desc(), ScoreEvent.id.desc())
        .limit(1)
        .scalar_subquery()
        for i in range(count)
    ]
    return _EVENTS.where(ScoreEvent.id.in_(newest))


_STAMP = select(func.max(ScoreEvent.id))


def _ticker_params(tickers: Sequence[str]) -> dict[str, str]:
    return {f"t{i}": ticker for i, ticker in enumerate(tickers)}


def _event_json(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    return {
        "ticker": row.ticker,
        "label": row.label,
        "score": round(row.score, 6),
        "probabilities": {
            "positive": round(row.p_positive, 6),
            "negative": round(row.p_negative, 6),
            "neutral": round(row.p_neutral, 6),
        },
        "scored_at": _iso(row.scored_at),
        "model": {"id": row.model_id, "revision": row.model_revision},
        "article": {
            "headline": row.title,
            "url": row.url,
            "source": row.source,
            "published_at": _iso(row.published_at),
        },
    }


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _json(body: dict[str, Any], *, status: int = 200, cache: bool = False) -> str:
    return _send(_dumps(body), status=status, cache=cache)


def _send(text: str, *, status: int = 200, cache: bool = False) -> str:
    """For cacheable reads add an ETag and answer 304 when it matches."""
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    if cache:
        etag = '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'
        bottle.response.set_header("ETag", etag)
        # private: per-token data; no-cache: always revalidate, which the ETag makes cheap.
        bottle.response.set_header("Cache-Control", "private, no-cache")
        if etag in bottle.request.get_header("If-None-Match", ""):
            bottle.response.status = 304
            return ""
    return text


class _LatestCache:
    """Each ticker's latest item as JSON text, kept while the stamp — the newest score
    event id — is unchanged. Every request still reads the stamp (one index lookup),
    so a new score is served as soon as it is committed; only tickers not cached
    since the stamp last changed are fetched. Scores are only ever inserted (new news,
    re-scores), each with a higher id, so a changed stamp is what a change looks like.

    The stamp misses no insert on SQLite, where writers commit one at a time in id
    order. On Postgres, ids come from a sequence when rows are inserted, so two
    concurrent writers (the scheduler and a ``run-once``) can commit out of id order
    and a score could hide behind a stamp already seen. ``max_age`` bounds that
    staleness, and any from deletes (articles removed with their scores), to well
    under a poll cycle.
    """

    def __init__(self, engine: Engine, max_age: float = 2.0, max_items: int = 5_000) -> None:
        self._engine, self._max_age, self._max_items = engine, max_age, max_items
        # (stamp, when, items): swapped whole, so threads never see a mix of two stamps.
        self._state: tuple[int | None, float, dict[str, str | None]] = (None, -max_age, {})

    def get(self, tickers: Sequence[str]) -> dict[str, str | None]:
        """Ticker -> its item's JSON text, or None when it has no score."""
        with self._engine.connect() as conn:
            # Read the stamp before the items: what is fetched is at least as new.
            stamp = conn.scalar(_STAMP)
            now = time.monotonic()
            kept, since, items = self._state
            if kept != stamp or now - since > self._max_age or len(items) > self._max_items:
                items = {}
                self._state = (stamp, now, items)
            wanted = [t for t in tickers if t not in items]
            if wanted:
                found = {
                    row.ticker: _dumps(_event_json(row))
                    for row in conn.execute(_latest(len(wanted)), _ticker_params(wanted))
                }
                for ticker in wanted:
                    items[ticker] = found.get(ticker)
        return {t: items[t] for t in tickers}


class _CachedDepth:
    """Queue depth for health, refreshed at most every few seconds and never fatal."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 5.0) -> None:
        self._sessions, self._ttl = sessions, ttl
        self._lock = threading.Lock()
        self._value: dict[str, int | None] = {"pending": None, "rescore_jobs": None}
        self._at = float("-inf")

    def get(self, model_id: str, revision: str) -> dict[str, int | None]:
        now = time.monotonic()
        if now - self._at < self._ttl or not self._lock.acquire(blocking=False):
            return self._value  # another thread is counting: answer at once
        try:
            with self._sessions() as session:
                self._value = {
                    "pending": queue_depth(session, model_id, revision),
                    "rescore_jobs": open_jobs(session),
                }
        except Exception:  # health must answer even when the database does not
            log.warning("queue depth unavailable", exc_info=True)
            self._value = {"pending": None, "rescore_jobs": None}
        finally:
            self._at = now
            self._lock.release()
        return self._value
