"""Query parameters: each parsed value or a BadRequest naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import bottle

from scorer.api.http import BadRequest, wsgi_text
from scorer.ingest.tickers import parse_ticker, parse_tickers
from scorer.scoring.model.base import LABELS

MAX_TICKERS = 50
DEFAULT_LIMIT, MAX_LIMIT = 500, 5_000
EARLIEST = datetime.min.replace(tzinfo=UTC)


def arg(name: str) -> str | None:
    """A query parameter as the text the client sent (percent-decoded UTF-8; bytes
    that are not UTF-8 become U+FFFD), or None when absent. Bottle decodes query
    values as latin-1, which would echo "é" back as "Ã©"."""
    raw = bottle.request.query.get(name)
    return None if raw is None else wsgi_text(raw)


def shown(raw: str, width: int = 40) -> str:
    """A client's value quoted for a message: bounded, control characters escaped,
    other characters (é, ü, 株) as they are."""
    return repr(raw[:width])


def span_before(end: datetime, span: timedelta) -> datetime:
    """``end - span``, or the earliest instant when that would underflow (to=0001-01-01)."""
    try:
        return end - span
    except OverflowError:
        return EARLIEST


def ticker(raw: str | None, name: str = "ticker") -> str:
    if not (raw or "").strip():
        raise BadRequest(f"'{name}' is required")
    try:
        return parse_ticker(raw or "")
    except ValueError:
        raise BadRequest(f"'{name}' has a malformed ticker {shown(raw or '', 20)}") from None


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
            f"'{name}' must be an ISO 8601 date or date-time, got {shown(raw)}"
        ) from None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-14:00 is in the year 10000 in UTC
        raise BadRequest(
            f"'{name}' is out of range: {shown(raw)} is not in the years 1-9999 in UTC"
        ) from None


def limit(raw: str | None, default: int = DEFAULT_LIMIT, most: int = MAX_LIMIT) -> int:
    if raw is None or not raw.strip():
        return default
    # isdecimal: int() would also take "١٢" (Arabic-Indic digits), "1_000" and " +5 ".
    text = raw.strip()
    if not (text.isascii() and text.isdecimal() and len(text) <= 9):
        raise BadRequest(f"'limit' must be a whole number from 1 to {most}, got {shown(raw, 20)}")
    value = int(text)
    if not 1 <= value <= most:
        raise BadRequest(f"'limit' must be between 1 and {most}")
    return value


def label(raw: str | None) -> str | None:
    if raw is None or not raw.strip():
        return None
    value = raw.strip().lower()
    if value not in LABELS:
        raise BadRequest(f"'label' must be one of {', '.join(LABELS)}, got {shown(raw, 20)}")
    return value


def min_relevance(raw: str | None) -> float:
    """0..1; items tagged with a lower relevance are left out. Default 0: all."""
    if raw is None or not raw.strip():
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"'min_relevance' must be a number, got {shown(raw, 20)}") from None
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise BadRequest("'min_relevance' must be between 0 and 1")
    return value
