"""What every route shares: JSON bodies, ETags, one error shape, and the mapping of a
database outage to 503 with its reason (scorer/storage/outage.py classifies; bearer
auth is the plugin in scorer/api/auth.py)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

import bottle
from sqlalchemy import exc as sa_exc

from scorer.storage.outage import OutageWatch, classify

log = logging.getLogger(__name__)

ERRORS = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    410: "gone",
    414: "uri_too_long",
    431: "header_too_large",
    500: "internal_error",
    503: "unavailable",
}
# Past these the app answers 414/431 itself; gunicorn's own limits (larger, see
# scorer/process/gunicorn_conf.py) answer before the app with its HTML 400.
MAX_QUERY = 2048
MAX_HEADER = 1024
RETRY_AFTER = 5  # seconds a client should wait after a 503 for a database outage
BODY_BYTES = "reasonator.body_bytes"  # environ key: the size of the body a 304 stands for


class BadRequest(Exception):
    """A query parameter is missing or malformed: a 400 naming it."""


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def iso(value: datetime) -> str:
    """ISO 8601 in UTC with a Z; stored instants are aware UTC already."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def wsgi_text(raw: str) -> str:
    """A WSGI environ string (PEP 3333: bytes held as latin-1) as the UTF-8 text the
    client meant; bytes that are not UTF-8 become U+FFFD instead of an exception
    (Bottle's own ``get_header`` raises UnicodeDecodeError on them)."""
    try:
        data = raw.encode("latin-1")
    except UnicodeEncodeError:  # not from a real server: already text
        return raw
    return data.decode("utf-8", errors="replace")


def header(name: str) -> str:
    """A request header as text ('' when absent), safe for any bytes; a 431 when
    longer than any header this API reads needs to be."""
    key = "HTTP_" + name.upper().replace("-", "_")
    raw = bottle.request.environ.get(key)
    if not isinstance(raw, str):
        return ""
    if len(raw) > MAX_HEADER:
        raise bottle.HTTPError(431, f"the {name} header is longer than {MAX_HEADER} bytes")
    return wsgi_text(raw)


def error_body(status: int, message: str) -> str:
    """The one error shape, for every status, formatted as every other body."""
    return dumps({"error": ERRORS.get(status, "error"), "message": message})


def send_json(body: dict[str, Any], *, status: int = 200, cache: bool = False) -> str:
    return send(dumps(body), status=status, cache=cache)


def etag_of(text: str) -> str:
    return '"' + hashlib.blake2b(text.encode(), digest_size=12).hexdigest() + '"'


def send(text: str, *, status: int = 200, cache: bool = False, etag: str | None = None) -> str:
    """For cacheable reads add an ETag (``etag``, when the caller kept the text's) and
    answer 304 when it matches."""
    bottle.response.status = status
    bottle.response.content_type = "application/json"
    if cache:
        etag = etag or etag_of(text)
        bottle.response.set_header("ETag", etag)
        # private: per-token data; no-cache: always revalidate, which the ETag makes cheap.
        bottle.response.set_header("Cache-Control", "private, no-cache")
        if etag_matches(header("If-None-Match"), etag):
            bottle.response.status = 304
            # The compress plugin gives a 304 the ETag the 200 would carry: weak when
            # the body would have been gzipped, which depends on its size.
            bottle.request.environ[BODY_BYTES] = len(text.encode())
            return ""
    return text


def etag_matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` matches any current representation; otherwise a
    comma-separated list compared weakly (``W/"x"`` matches ``"x"``)."""
    value = if_none_match.strip()
    if value == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in value.split(",") if tag.strip())


def install_errors(
    app: bottle.Bottle, outages: OutageWatch, *, no_database: Collection[str] = ()
) -> None:
    """Every error answers one JSON shape; a BadRequest from a route is a 400 and a
    database outage a 503 with Retry-After and the outage's reason. ``outages`` hears
    of each outage a route meets and of each route (outside ``no_database``, the rules
    that read no table) that answered again."""

    def error(err: bottle.HTTPError) -> str:
        # A 500's traceback is already written to the server's error log by Bottle and
        # reported by Sentry's Bottle integration; the client gets no detail.
        message = err.body if isinstance(err.body, str) and err.status_code < 500 else None
        if err.status_code == 503 and isinstance(err.body, str):
            message = err.body  # ours, and free of detail: "the database is unreachable"
        if err.status_code == 405:  # Bottle's Allow lists GET only; HEAD is served as GET
            bottle.response.set_header("Allow", allow(str(err.headers.get("Allow", ""))))
        bottle.response.content_type = "application/json"
        return error_body(err.status_code, message or err.status_line)

    for status in ERRORS:
        app.error(status)(error)
    app.add_hook("before_request", _limit_query)
    app.install(_ErrorsPlugin(outages, frozenset(no_database)))


def allow(methods: str) -> str:
    """An Allow header value with HEAD wherever GET is (Bottle answers HEAD with GET)."""
    names = [m.strip().upper() for m in methods.split(",") if m.strip()]
    if "GET" in names and "HEAD" not in names:
        names.insert(names.index("GET") + 1, "HEAD")
    return ", ".join(names)


def _limit_query() -> None:
    if len(bottle.request.environ.get("QUERY_STRING", "")) > MAX_QUERY:
        raise bottle.HTTPError(414, f"the query string is longer than {MAX_QUERY} bytes")


class _ErrorsPlugin:
    """A BadRequest as a 400; an outage as a 503 (one log line per change of state, in
    ``OutageWatch``, never a traceback per request); any other database error raises
    on, a bug: Bottle's 500, with the traceback in the log."""

    name = "errors"
    api = 2

    def __init__(self, outages: OutageWatch, no_database: frozenset[str]) -> None:
        self._outages, self._no_database = outages, no_database

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        outages = self._outages
        reads = route.rule not in self._no_database

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                result = callback(*args, **kwargs)
            except BadRequest as exc:
                return send(error_body(400, str(exc)), status=400)
            except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
                outage = classify(exc)
                if outage is None:
                    raise
                outages.failed(outage, exc, "a request")
                bottle.response.set_header("Retry-After", str(RETRY_AFTER))
                return send(error_body(503, outage.reason), status=503)
            if reads:
                outages.succeeded()
            return result

        return wrapper
