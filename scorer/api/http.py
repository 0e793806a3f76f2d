"""What every route shares: JSON bodies, ETags, one error shape, bearer auth."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import bottle

from scorer.config import Settings

ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    500: "internal_error",
}


class BadRequest(Exception):
    """A query parameter is missing or malformed: a 400 naming it."""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z; stored instants are aware UTC already."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def send_json(body: dict[str, Any], *, status: int = 200, cache: bool = False) -> str:
    return send(dumps(body), status=status, cache=cache)


def send(text: str, *, status: int = 200, cache: bool = False) -> str:
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


def authorize(settings: Settings) -> None:
    """Raise 401 unless the request carries one of the service's bearer tokens (the
    current one, or the next during a rotation)."""
    # The raw WSGI value (latin-1 text): Bottle's get_header decodes it as UTF-8 and
    # raises on a non-UTF-8 byte, which made a malformed header a 500 (and a Sentry
    # event with the header in a frame's locals) instead of a 401.
    header = bottle.request.environ.get("HTTP_AUTHORIZATION") or ""
    scheme, _, token = header.partition(" ")
    given = token.strip().encode("latin-1", "replace")
    # compare_digest: the time taken must not tell how much of a token matched. Every
    # token is compared, so the time does not tell which one matched either.
    matched = False
    for expected in settings.service_tokens:
        matched |= hmac.compare_digest(given, expected.encode())
    if scheme.lower() != "bearer" or not matched:
        raise bottle.HTTPError(
            401,
            "a valid bearer token is required",
            **{"WWW-Authenticate": 'Bearer realm="reasonator"'},
        )


def install_errors(app: bottle.Bottle) -> None:
    """Every error answers one JSON shape; a BadRequest from a route is a 400."""

    def error(err: bottle.HTTPError) -> str:
        # A 500's traceback is already written to the server's error log by Bottle and
        # reported by Sentry's Bottle integration; the client gets no detail.
        message = err.body if isinstance(err.body, str) and err.status_code < 500 else None
        bottle.response.content_type = "application/json"
        return json.dumps(
            {"error": ERRORS.get(err.status_code, "error"), "message": message or err.status_line}
        )

    for status in ERRORS:
        app.error(status)(error)
    app.install(_bad_request_plugin)


def _bad_request_plugin(callback: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except BadRequest as exc:
            return send_json({"error": "bad_request", "message": str(exc)}, status=400)

    return wrapper
