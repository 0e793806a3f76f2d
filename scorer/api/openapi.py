"""``GET /v1/openapi.json``: the API's contract as an OpenAPI 3.1 document.

The document is plain data: ``SCHEMAS`` (bodies), ``PARAMETERS`` and ``paths()``.
To document an endpoint, add its path below (and any schema it needs); the test
(tests/api/test_openapi.py) fails for any route of the app the document does not list
and for any operation it lists that the app does not have, and validates real
responses of every endpoint against it.
"""

from __future__ import annotations

from typing import Any

import bottle

from scorer import __version__
from scorer.api import articles, console, drilldown, scores
from scorer.api.health import DATABASE_STATES
from scorer.api.history import WINDOWS
from scorer.api.http import ERRORS, dumps, send
from scorer.api.params import NONE, Spec
from scorer.ingest.tickers import REASONS
from scorer.scoring.model.base import LABELS
from scorer.scoring.segments import HEADLINE, SUMMARY
from scorer.scoring.sentiment import SCOPE_ARTICLE, SCOPE_TICKER
from scorer.storage.buckets import INTERVALS
from scorer.storage.rollups import BASES

J = dict[str, Any]


def _ref(name: str) -> J:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: J, optional: J | None = None, *, extra: bool = False) -> J:
    """An object with these properties; ``extra`` lets it carry more (health's contract)."""
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
        "additionalProperties": extra,
    }


_STR, _INT, _BOOL = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_INSTANT = {"type": "string", "format": "date-time"}
_UNIT = {"type": "number", "minimum": 0, "maximum": 1}
_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INSTANT = {"type": ["string", "null"], "format": "date-time"}
_TAGGED_BY = {"type": "string", "enum": list(REASONS)}
# Each list comes from the module that owns it: the document cannot drift from the code.
_LABEL = {"type": "string", "enum": list(LABELS)}
_INTERVAL = {"type": "string", "enum": list(INTERVALS)}
_BASIS = {"type": "string", "enum": list(BASES)}
_WINDOW = {"type": "string", "enum": list(WINDOWS)}

_SCORE_ITEM: J = {
    "ticker": _STR,
    "label": _ref("Label"),
    "score": _ref("Score"),
    "probabilities": _ref("Probabilities"),
    "scored_at": _INSTANT,
    "model": _ref("Model"),
    "method": {
        "type": "string",
        "description": "how the score was made: clauses-1 (the ticker's own clauses) or "
        "article-1 (the article's score for every ticker, before 2026-12-06)",
    },
    "scope": {
        "type": "string",
        "enum": [SCOPE_TICKER, SCOPE_ARTICLE],
        "description": "ticker: from the text about the ticker; article: the article's "
        "score (the text does not name the ticker: tagged by its feed or by data)",
    },
    "highlights": {"type": "array", "maxItems": 3, "items": _ref("Highlight")},
    "relevance": _UNIT,
    "tagged_by": _TAGGED_BY,
    "article": _ref("ArticleRef"),
}

SCHEMAS: J = {
    "Error": _obj(
        {"error": {"type": "string", "enum": sorted(set(ERRORS.values()))}, "message": _STR}
    ),
    "Probabilities": _obj(dict.fromkeys(LABELS, _UNIT)),
    "Model": _obj({"id": _STR, "revision": _STR}),
    "Label": _LABEL,
    "Score": {"type": "number", "minimum": -1, "maximum": 1},
    "ArticleRef": _obj(
        {"headline": _STR, "url": _NULLABLE_STR, "source": _STR, "published_at": _INSTANT}
    ),
    "Highlight": _obj(
        {
            "text": _STR,
            "in": {"type": "string", "enum": [HEADLINE, SUMMARY]},
            "start": {"type": "integer", "minimum": 0},
            "end": {"type": "integer", "minimum": 0},
            "label": _ref("Label"),
            "score": _ref("Score"),
            "probabilities": _ref("Probabilities"),
        }
    ),
    "ScoreItem": _obj(_SCORE_ITEM),
    "Labels": _obj(
        {
            "positive": {"type": "integer", "minimum": 0},
            "negative": {"type": "integer", "minimum": 0},
            "neutral": {"type": "integer", "minimum": 0},
        }
    ),
    "Window": _obj(
        {
            "span": _WINDOW,
            "from": _INSTANT,
            "count": {"type": "integer", "minimum": 0},
            "mean": {"oneOf": [{"type": "null"}, _ref("Score")]},
            "labels": _ref("Labels"),
        }
    ),
    "LatestItem": _obj({**_SCORE_ITEM, "window": _ref("Window")}),
    "Bucket": _obj(
        {
            "start": _INSTANT,
            "end": _INSTANT,
            "session": {"type": "string", "format": "date"},
            "count": {"type": "integer", "minimum": 0},
            "mean": {"oneOf": [{"type": "null"}, _ref("Score")]},
            "min": {"oneOf": [{"type": "null"}, _ref("Score")]},
            "max": {"oneOf": [{"type": "null"}, _ref("Score")]},
            "labels": _ref("Labels"),
            "relevance_weighted_mean": {"oneOf": [{"type": "null"}, _ref("Score")]},
            "articles": {
                "type": ["string", "null"],
                "description": "the path (relative to the API's origin) of the articles "
                f"this bucket counts ({drilldown.PATH}); null when count is 0",
            },
        }
    ),
    "BucketArticle": _obj(
        {
            "id": _INT,
            "headline": _STR,
            "url": _NULLABLE_STR,
            "source": _STR,
            "published_at": _INSTANT,
            "score": {
                **_ref("TickerScore"),
                "description": "the ticker's score the bucket counts: on known the pair's "
                "first (as it was known then), on published its current one",
            },
        }
    ),
    "BucketArticles": _obj(
        {
            "ticker": _STR,
            "interval": _INTERVAL,
            "basis": _BASIS,
            "bucket": _obj({"start": _INSTANT, "end": _INSTANT}),
            "count": {
                "type": "integer",
                "minimum": 0,
                "description": "the bucket's count in history: the articles listed over all pages",
            },
            "articles": {"type": "array", "items": _ref("BucketArticle")},
            "next_cursor": _NULLABLE_STR,
        }
    ),
    "Buckets": _obj(
        {
            "ticker": _STR,
            "interval": _INTERVAL,
            "basis": _BASIS,
            "from": _INSTANT,
            "to": _INSTANT,
            "data": {"type": "array", "items": _ref("Bucket")},
        }
    ),
    "HistoryOrBuckets": {"oneOf": [_ref("History"), _ref("Buckets")]},
    "Latest": _obj(
        {
            "data": {"type": "array", "items": _ref("LatestItem")},
            "missing": {
                "type": "array",
                "items": _STR,
                "description": "tickers asked for that have no score (watched or not)",
            },
            "unwatched": {
                "type": "array",
                "items": _STR,
                "description": "tickers asked for that are not on the watchlist: no new "
                "scores will come for them (listed in data too if scored before)",
            },
        }
    ),
    "History": _obj(
        {
            "ticker": _STR,
            "from": _INSTANT,
            "to": _INSTANT,
            "limit": _INT,
            "min_relevance": _UNIT,
            "truncated": _BOOL,
            "data": {"type": "array", "items": _ref("ScoreItem")},
        }
    ),
    # A ticker's score of an article in /v1/articles: a score item without the article.
    "TickerScore": _obj({k: v for k, v in _SCORE_ITEM.items() if k != "article"}),
    "Article": _obj(
        {
            "id": _INT,
            "headline": _STR,
            "url": _NULLABLE_STR,
            "source": _STR,
            "published_at": _INSTANT,
            "tickers": {"type": "array", "items": _ref("TickerScore")},
        }
    ),
    "Articles": _obj(
        {
            "data": {"type": "array", "items": _ref("Article")},
            "limit": _INT,
            "next_cursor": _NULLABLE_STR,
        }
    ),
    "Coverage": _obj(
        {
            "ticker": _STR,
            "articles_24h": {"type": "integer", "minimum": 0},
            "articles_7d": {"type": "integer", "minimum": 0},
            "last_scored_at": {"type": ["string", "null"], "format": "date-time"},
            "last_score": {
                "oneOf": [
                    {"type": "null"},
                    _obj(
                        {"score": _ref("Score"), "label": _ref("Label"), "published_at": _INSTANT}
                    ),
                ]
            },
        }
    ),
    "Feed": _obj(
        {
            "name": _STR,
            "kind": _STR,
            "url": _STR,
            "ticker": _NULLABLE_STR,
            "last_success_at": _NULLABLE_INSTANT,
            "last_error": _NULLABLE_STR,
            "consecutive_failures": {"type": "integer", "minimum": 0},
            "next_attempt_at": _NULLABLE_INSTANT,
            "items_seen": {"type": "integer", "minimum": 0},
            "items_stored_24h": {"type": "integer", "minimum": 0},
        }
    ),
    "Feeds": _obj({"data": {"type": "array", "items": _ref("Feed")}}),
    "Tickers": _obj({"as_of": _INSTANT, "data": {"type": "array", "items": _ref("Coverage")}}),
    "Health": _obj(
        {
            "status": {"type": "string", "enum": ["ok", "warming_up", "degraded"]},
            "model_loaded": _BOOL,
        },
        {
            "reason": _STR,
            "model_id": _STR,
            "model_sha": _STR,
            "queue_depth": _obj(
                {
                    "pending": {"type": ["integer", "null"]},
                    "rescore_jobs": {"type": ["integer", "null"]},
                }
            ),
            "uptime_seconds": _INT,
            "version": _STR,
            "env": _STR,
            "flag_reasonator": _BOOL,
            "role": {"type": "string", "enum": ["scheduler", "reader", "read"]},
            "database": {"type": "string", "enum": list(DATABASE_STATES)},
            "storage": {"type": ["object", "null"]},  # the usage against the plan
        },
        extra=True,  # the design's contract: extra fields are fine
    ),
    "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
}


# Query parameters are each route's own Spec (scorer/api/params.py), the list the route
# parses against: only the header parameters are shared components.
PARAMETERS: J = {
    "IfNoneMatch": {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "an ETag of a previous response, a list of them, or *: 304 when it matches",
        "schema": {"type": "string"},
    },
}


def _error(description: str) -> J:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


RESPONSES: J = {
    "BadRequest": _error(
        "a parameter is missing, malformed, repeated, unknown to the route or not taken "
        "with another; the message names it"
    ),
    "Unauthorized": _error("no valid bearer token"),
    "NotFound": _error("no such path"),
    "MethodNotAllowed": {
        **_error("only GET and HEAD"),
        "headers": {"Allow": {"schema": {"type": "string", "enum": ["GET, HEAD"]}}},
    },
    "UriTooLong": _error("the query string is longer than 2048 bytes"),
    "HeaderTooLarge": _error("a header the API reads is longer than 1024 bytes"),
    "Unavailable": {
        **_error(
            "the database is unreachable, or has no schema (the message names the fix); "
            "retry after Retry-After seconds"
        ),
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    "InternalError": _error("a bug; the detail is in the server's log"),
    "Gone": _error(
        "retention pruned what this bucket counts (its articles, or a 15m/1h bucket's roll-up); "
        "the message says before when. Never a shorter list"
    ),
}
_COMMON = {
    "405": {"$ref": "#/components/responses/MethodNotAllowed"},
    "414": {"$ref": "#/components/responses/UriTooLong"},
    "431": {"$ref": "#/components/responses/HeaderTooLarge"},
    "500": {"$ref": "#/components/responses/InternalError"},
}
# Every route refuses a parameter it does not take (public ones too).
_BAD_REQUEST = {"$ref": "#/components/responses/BadRequest"}
_READ = {
    **_COMMON,
    "304": {
        "description": "not modified: the If-None-Match ETag matches; the same ETag, "
        "Cache-Control and Vary as the 200"
    },
    "400": _BAD_REQUEST,
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}


def _ok(schema: str, description: str) -> J:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _read(summary: str, schema: str, spec: Spec = NONE) -> J:
    return {
        "get": {
            "summary": summary,
            "security": [{"bearer": []}],
            "parameters": [*spec.openapi(), {"$ref": "#/components/parameters/IfNoneMatch"}],
            "responses": {"200": _ok(schema, summary), **_READ},
        }
    }


def _console(path: str) -> J:
    """A file of the operator's console: public, not JSON (docs/console.md)."""
    media = console.MEDIA_TYPES[path]
    return {
        "get": {
            "summary": "the operator's console page (public: it asks for the token)"
            if path == "/console"
            else f"a file of the operator's console ({media}, public)",
            "security": [],
            "parameters": [{"$ref": "#/components/parameters/IfNoneMatch"}],
            "responses": {
                "200": {
                    "description": "the file, with Content-Security-Policy, ETag and "
                    "Cache-Control: no-cache",
                    "content": {media: {"schema": {"type": "string"}}},
                },
                "304": _READ["304"],
                "400": _BAD_REQUEST,
                **_COMMON,
            },
        }
    }


def _with(item: J, responses: J) -> J:
    """An operation with more responses than every read has."""
    get = item["get"]
    return {"get": {**get, "responses": {**get["responses"], **responses}}}


def paths() -> J:
    return {
        "/v1/health": {
            "get": {
                "summary": "liveness and readiness (public: the keep-alive target)",
                "security": [],
                "responses": {
                    "200": _ok("Health", "ready"),
                    "503": _ok(
                        "Health",
                        "warming_up, or degraded: the database unavailable past DB_OUTAGE_GRACE",
                    ),
                    "400": _BAD_REQUEST,
                    **_COMMON,
                },
            }
        },
        "/v1/openapi.json": {
            "get": {
                "summary": "this document (public)",
                "security": [],
                "parameters": [{"$ref": "#/components/parameters/IfNoneMatch"}],
                "responses": {
                    "200": _ok("OpenAPI", "OpenAPI 3.1"),
                    "304": _READ["304"],
                    "400": _BAD_REQUEST,
                    **_COMMON,
                },
            }
        },
        "/v1/scores/latest": _read(
            "the score of each ticker's newest news", "Latest", scores.LATEST
        ),
        "/v1/scores/history": _read(
            "a ticker's score events by when they were known, or (with interval) buckets",
            "HistoryOrBuckets",
            scores.HISTORY,
        ),
        drilldown.PATH: _with(
            _read(
                "the articles a history bucket counts, each with the ticker's score, paged "
                "by cursor (a bucket's `articles` link)",
                "BucketArticles",
                drilldown.SPEC,
            ),
            {"410": {"$ref": "#/components/responses/Gone"}},
        ),
        "/v1/articles": _read(
            "scored articles, newest first, paged by cursor", "Articles", articles.SPEC
        ),
        "/v1/feeds": _read("each configured feed and how it is doing", "Feeds"),
        "/v1/tickers": _read("the watchlist with its coverage", "Tickers"),
        **{path: _console(path) for path in sorted(console.PATHS)},
    }


def document() -> J:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reasonator", "version": __version__},
        "paths": paths(),
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "responses": RESPONSES,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def install(app: bottle.Bottle) -> None:
    text = dumps(document())

    @app.get("/v1/openapi.json")
    def openapi() -> str:
        return send(text, cache=True)
