"""``GET /v1/tickers``: the watchlist with its coverage per ticker: scored articles in
the last 24 hours and 7 days, when it was last scored, and its latest score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import bottle
from sqlalchemy import Engine, distinct, func, select

from scorer.api.http import iso, send_json
from scorer.config.settings import Settings
from scorer.storage.tables import ScoreEvent


def install(app: bottle.Bottle, settings: Settings, engine: Engine) -> None:
    watchlist = sorted(settings.watchlist)

    @app.get("/v1/tickers")
    def tickers() -> str:
        # The minute, not the instant: the same body (and ETag, so a 304) within a minute.
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        day, week = now - timedelta(hours=24), now - timedelta(days=7)
        with engine.connect() as conn:
            data = [_coverage(conn, ticker, day, week) for ticker in watchlist]
        return send_json({"as_of": iso(now), "data": data}, cache=True)


def _coverage(conn: Any, ticker: str, day: datetime, week: datetime) -> dict[str, Any]:
    """Three index seeks on score_events: (ticker, published_at) for the counts and
    the newest news, (ticker, scored_at) for the last scoring."""
    mine = ScoreEvent.ticker == ticker
    recent = (
        select(ScoreEvent.article_id, ScoreEvent.published_at)
        .where(mine, ScoreEvent.published_at >= week)
        .subquery()
    )
    counts = conn.execute(
        select(
            func.count(distinct(recent.c.article_id)).filter(recent.c.published_at >= day),
            func.count(distinct(recent.c.article_id)),
        )
    ).one()
    last_scored = conn.scalar(select(func.max(ScoreEvent.scored_at)).where(mine))
    newest = conn.execute(
        select(ScoreEvent.score, ScoreEvent.label, ScoreEvent.published_at)
        .where(mine)
        .order_by(ScoreEvent.published_at.desc(), ScoreEvent.id.desc())
        .limit(1)
    ).first()
    return {
        "ticker": ticker,
        "articles_24h": int(counts[0]),
        "articles_7d": int(counts[1]),
        "last_scored_at": None if last_scored is None else iso(_aware(last_scored)),
        "last_score": None
        if newest is None
        else {
            "score": round(newest.score, 6),
            "label": newest.label,
            "published_at": iso(newest.published_at),
        },
    }


def _aware(value: datetime) -> datetime:
    # func.max() returns the column's raw value (no type processing on SQLite): naive UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
