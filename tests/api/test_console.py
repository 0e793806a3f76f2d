"""``/console``: public static files with a strict Content-Security-Policy, cached by
ETag (304s), gzipped for clients that take it, and served by the Booting app too."""

from __future__ import annotations

import gzip
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import pytest
from sqlalchemy import Engine
from webtest import TestApp

from scorer.api import console, create_app
from scorer.api.auth import PUBLIC_ROUTES
from scorer.config.settings import Settings
from scorer.process.boot import Booting
from scorer.scoring.model import ModelLoader

FILES = Path(console.__file__).parent / "console_assets"


@pytest.fixture
def app(settings: Settings, engine: Engine) -> TestApp:
    loader = ModelLoader(lambda: None)  # type: ignore[arg-type, return-value]  # never loads
    return TestApp(create_app(settings, engine=engine, loader=loader))


def test_the_page_and_its_files_are_public_with_a_self_only_policy(app: TestApp) -> None:
    assert console.PATHS <= PUBLIC_ROUTES
    for path, media in console.MEDIA_TYPES.items():
        response = app.get(path)  # no token
        assert response.content_type == media
        headers = response.headers
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["Cache-Control"] == "no-cache"
        assert headers["ETag"].startswith('"')


def _raw(app: TestApp, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
    """The WSGI answer as sent (WebTest decodes gzip and drops Content-Encoding)."""
    environ: dict[str, object] = {}
    setup_testing_defaults(environ)
    environ.update({"PATH_INFO": path, **{f"HTTP_{k.upper()}": v for k, v in headers.items()}})
    answer: list[object] = []
    body = b"".join(app.app(environ, lambda status, sent, *_: answer.extend([status, sent])))
    status, sent = answer
    return str(status), {k.lower(): v for k, v in sent}, body  # type: ignore[attr-defined]


def test_a_file_revalidates_with_a_304_and_is_gzipped_when_asked(app: TestApp) -> None:
    status, headers, packed = _raw(app, "/console/console.js", ACCEPT_ENCODING="gzip")
    assert status == "200 OK" and headers["content-encoding"] == "gzip"
    assert headers["etag"].startswith('W/"') and headers["vary"] == "Accept-Encoding"
    plain = app.get("/console/console.js")
    assert gzip.decompress(packed) == plain.body == (FILES / "console.js").read_bytes()
    for etag in (headers["etag"], plain.headers["ETag"]):
        again = app.get("/console/console.js", headers={"If-None-Match": etag}, status=304)
        assert again.body == b"" and again.headers["Content-Security-Policy"]


def test_the_page_has_no_inline_script_or_style_and_calls_nothing_outside(app: TestApp) -> None:
    page = app.get("/console").text
    assert "<style" not in page and " style=" not in page and "<script>" not in page
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "https://" not in page
    script = (FILES / "console.js").read_text()
    assert ".innerHTML" not in script and "eval(" not in script
    assert "localStorage" not in script and "document.cookie" not in script


def test_a_query_string_is_refused_as_on_every_route(app: TestApp) -> None:
    body = app.get("/console?v=2", status=400).json
    assert body["error"] == "bad_request" and "'v'" in body["message"]


def test_the_booting_app_serves_the_console_while_health_says_503() -> None:
    booting = TestApp(Booting(dict, lambda s: None))  # type: ignore[arg-type, return-value]
    assert booting.get("/v1/health", status=503).json["status"] == "warming_up"
    page = booting.get("/console", status=200)
    assert "Reasonator console" in page.text and page.headers["Content-Security-Policy"]
    booting.get("/console/console.css", status=200)
    booting.get("/console", headers={"If-None-Match": page.headers["ETag"]}, status=304)
    assert booting.get("/v1/tickers", status=401).json["error"] == "unauthorized"
