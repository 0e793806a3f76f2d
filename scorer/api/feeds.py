"""``GET /v1/feeds``: each configured feed and how it is doing (for operators)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import bottle
from sqlalchemy.orm import Session, sessionmaker

from scorer.api.http import iso, send_json
from scorer.config.settings import Settings
from scorer.ingest.sources import FeedSpec, redact_url
from scorer.storage.store import feed_health
from scorer.storage.tables import Feed


def install(
    app: bottle.Bottle,
    settings: Settings,
    sessions: sessionmaker[Session],
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    @app.get("/v1/feeds")
    def feeds() -> str:
        specs = settings.feed_specs
        now = clock()
        with sessions() as session:
            health = feed_health(session, [s.key for s in specs], now - timedelta(hours=24))
        data = [_feed_json(s, *health.get(s.key, (None, 0))) for s in specs]
        return send_json({"data": data}, cache=True)


def _when(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def _feed_json(spec: FeedSpec, state: Feed | None, stored: int) -> dict[str, Any]:
    if state is None:  # configured, not fetched yet
        state = Feed(consecutive_failures=0, items_seen=0)
    return {
        "name": spec.name,
        "kind": spec.kind,
        "url": redact_url(spec.url),  # query strings may carry keys
        "ticker": spec.ticker,
        "last_success_at": _when(state.last_success_at),
        "last_error": state.last_error,
        "consecutive_failures": state.consecutive_failures,
        "next_attempt_at": _when(state.next_attempt_at),
        "items_seen": state.items_seen,
        "items_stored_24h": stored,
    }
