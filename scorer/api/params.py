"""Query parameters: each parsed value or a BadRequest naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime

from scorer.api.http import BadRequest
from scorer.tickers import parse_ticker, parse_tickers

MAX_TICKERS = 50
DEFAULT_LIMIT, MAX_LIMIT = 500, 5_000


def ticker(raw: str | None, name: str = "ticker") -> str:
    if not (raw or "").strip():
        raise BadRequest(f"'{name}' is required")
    try:
        return parse_ticker(raw or "")
    except ValueError as exc:
        raise BadRequest(f"'{name}' has a {exc}") from None


def tickers(raw: str | None) -> list[str]:
    if not (raw or "").strip():
        raise BadRequest("'tickers' is required: a comma-separated list such as AAPL,MSFT")
    try:
        values = parse_tickers(raw or "")
    except ValueError as exc:
        raise BadRequest(f"'tickers' has {exc}") from None
    if not values:
        raise BadRequest("'tickers' is required: a comma-separated list such as AAPL,MSFT")
    if len(values) > MAX_TICKERS:
        raise BadRequest(f"'tickers' may name at most {MAX_TICKERS} tickers")
    return values


def instant(name: str, raw: str | None) -> datetime | None:
    """ISO 8601 date or date-time; no offset means UTC."""
    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadRequest(
            f"'{name}' must be an ISO 8601 date or date-time, got {raw[:40]!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def limit(raw: str | None) -> int:
    if raw is None or not raw.strip():
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'limit' must be a whole number, got {raw[:20]!r}") from None
    if not 1 <= value <= MAX_LIMIT:
        raise BadRequest(f"'limit' must be between 1 and {MAX_LIMIT}")
    return value


def min_relevance(raw: str | None) -> float:
    """0..1; items tagged with a lower relevance are left out. Default 0: all."""
    if raw is None or not raw.strip():
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"'min_relevance' must be a number, got {raw[:20]!r}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise BadRequest("'min_relevance' must be between 0 and 1")
    return value
