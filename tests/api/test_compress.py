"""gzip for clients that accept it, with ETags and 304s that keep working."""

from __future__ import annotations

import gzip
import io
import json

import pytest
from sqlalchemy import Engine
from webtest import TestApp

from scorer.api import create_app
from scorer.api.compress import MIN_BYTES, accepts_gzip
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from tests.conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
# A week of empty 15m buckets: ~28 kB of JSON, no scores needed.
HISTORY = "/v1/scores/history?ticker=AAPL&interval=15m&from=2026-11-16&to=2026-11-21"


@pytest.fixture
def app(settings: Settings, engine: Engine) -> TestApp:
    never = ModelLoader(lambda: (_ for _ in ()).throw(OSError("not needed")))
    return TestApp(create_app(settings, engine=engine, loader=never))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("x-gzip", True),
        ("*", True),
        ("", False),
        ("identity", False),
        ("br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000, *", False),  # gzip refused by name: '*' does not bring it back
        ("gzip;q=junk", False),
        ("\udcff\x00gzip", False),
    ],
)
def test_accept_encoding_is_read_as_rfc_9110_says(value: str, expected: bool) -> None:
    assert accepts_gzip(value) is expected


def raw_get(app: TestApp, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
    """Status, headers and body bytes as the app sent them (WebTest would un-gzip them)."""
    target, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": target,
        "QUERY_STRING": query,
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "HTTP_AUTHORIZATION": AUTH["Authorization"],
        **{"HTTP_" + k.upper(): v for k, v in headers.items()},
    }
    sent: list[tuple[str, list[tuple[str, str]]]] = []
    body = b"".join(app.app(environ, lambda status, hdrs, exc=None: sent.append((status, hdrs))))
    return sent[0][0], dict(sent[0][1]), body


def test_a_large_answer_is_gzipped_for_a_client_that_accepts_it(app: TestApp) -> None:
    _, plain, body = raw_get(app, HISTORY)
    status, packed, gz = raw_get(app, HISTORY, accept_encoding="gzip, deflate, br")
    assert status == "200 OK" and "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert plain["Vary"] == packed["Vary"] == "Accept-Encoding"
    assert len(body) > MIN_BYTES and len(gz) < len(body) / 4
    assert int(packed["Content-Length"]) == len(gz)
    assert gzip.decompress(gz) == body
    # The same bytes, another representation: the ETag is weakened, and still matches.
    assert packed["Etag"] == "W/" + plain["Etag"]
    for tag in (packed["Etag"], plain["Etag"]):
        status, _, empty = raw_get(app, HISTORY, accept_encoding="gzip", if_none_match=tag)
        assert (status, empty) == ("304 Not Modified", b"")
    assert json.loads(body)["interval"] == "15m"


def test_small_answers_errors_and_refusals_are_left_alone(app: TestApp) -> None:
    gz = {"Accept-Encoding": "gzip"}
    small = app.get("/v1/scores/latest?tickers=AAPL", headers={**AUTH, **gz})
    assert "Content-Encoding" not in small.headers and len(small.body) < MIN_BYTES
    bad = app.get("/v1/scores/history?ticker=AAPL&interval=5m", headers={**AUTH, **gz}, status=400)
    assert "Content-Encoding" not in bad.headers and bad.json["error"] == "bad_request"
    _, refused, body = raw_get(app, HISTORY, accept_encoding="gzip;q=0")
    assert "Content-Encoding" not in refused and json.loads(body)["interval"] == "15m"
