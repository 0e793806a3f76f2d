"""The read API (Bottle): public health, bearer-protected scores."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import bottle
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs.score import open_jobs, queue_depth
from scorer import __version__
from scorer.config import Settings
from scorer.db import as_utc
from scorer.loader import ModelLoader
from scorer.models import Article, ScoreEvent

log = logging.getLogger(__name__)

MAX_TICKERS = 50
HISTORY_DEFAULT_LIMIT, HISTORY_MAX_LIMIT = 500, 5_000
HISTORY_DEFAULT_SPAN = timedelta(days=7)
_TICKER = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")


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
        with sessions() as session:
            found = {t: _latest_event(session, t) for t in tickers}
        body = {
            "data": [_event_json(t, row) for t, row in found.items() if row is not None],
            "missing": [t for t, row in found.items() if row is None],
        }
        return _json(body, cache=True)

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
            select(ScoreEvent, Article)
            .join(Article, Article.id == ScoreEvent.article_id)
            .where(
                ScoreEvent.ticker == ticker,
                ScoreEvent.scored_at >= start,
                ScoreEvent.scored_at <= end,
            )
            .order_by(ScoreEvent.scored_at, ScoreEvent.id)
            .limit(limit + 1)
        )
        with sessions() as session:
            rows = session.execute(stmt).all()
        return _json(
            {
                "ticker": ticker,
                "from": _iso(start),
                "to": _iso(end),
                "limit": limit,
                "truncated": len(rows) > limit,
                "data": [_event_json(ticker, row) for row in rows[:limit]],
            },
            cache=True,
        )

    @app.error(400)
    @app.error(401)
    @app.error(404)
    @app.error(405)
    @app.error(500)
    def error(err: bottle.HTTPError) -> str:
        if err.status_code == 500 and err.exception is not None:
            log.error("unhandled error", exc_info=err.exception)
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
    if not _TICKER.match(value):
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


_LATEST = (
    select(ScoreEvent, Article)
    .join(Article, Article.id == ScoreEvent.article_id)
    .order_by(ScoreEvent.published_at.desc(), ScoreEvent.id.desc())
    .limit(1)
)


def _latest_event(session: Session, ticker: str) -> tuple[ScoreEvent, Article] | None:
    """The score of the newest news about ``ticker`` (the newest revision's, if re-scored)."""
    row = session.execute(_LATEST.where(ScoreEvent.ticker == ticker)).first()
    return None if row is None else (row[0], row[1])


def _event_json(ticker: str, row: tuple[ScoreEvent, Article]) -> dict[str, Any]:
    event, article = row
    return {
        "ticker": ticker,
        "label": event.label,
        "score": round(event.score, 6),
        "probabilities": {
            "positive": round(event.p_positive, 6),
            "negative": round(event.p_negative, 6),
            "neutral": round(event.p_neutral, 6),
        },
        "scored_at": _iso(event.scored_at),
        "model": {"id": event.model_id, "revision": event.model_revision},
        "article": {
            "headline": article.title,
            "url": article.url,
            "source": article.source,
            "published_at": _iso(article.published_at),
        },
    }


def _iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


def _json(body: dict[str, Any], *, status: int = 200, cache: bool = False) -> str:
    """Serialise; for cacheable reads add an ETag and answer 304 when it matches."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
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
