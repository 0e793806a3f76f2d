"""Sentry leaks nothing: real errors raised in the app reach a local endpoint posing as
the DSN, and no secret appears anywhere in what it recorded."""

from __future__ import annotations

import gzip
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sentry_sdk
from webtest import TestApp

from scorer.config.settings import Settings
from scorer.ops.observability import FILTERED, Scrubber, release, secret_values
from scorer.process import web

TOKEN = secrets.token_urlsafe(32)
NEXT = secrets.token_urlsafe(32)
CLIENT_SECRET = "client-secret-" + secrets.token_hex(8)
CF_SECRET = "cf-secret-" + secrets.token_hex(8)
DB_PASSWORD = "dbpw-" + secrets.token_hex(8)


class Recorder:
    """An HTTP server on 127.0.0.1 that records every envelope posted to it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.arrived = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                assert encoding in ("", "gzip"), encoding
                with recorder.arrived:
                    recorder.bodies.append(gzip.decompress(data) if encoding else data)
                    recorder.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey1234@127.0.0.1:{self.server.server_address[1]}/1"

    @property
    def text(self) -> str:
        return b"\n".join(self.bodies).decode("utf-8", "replace")


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        sentry_sdk.get_client().close(timeout=5)
        sentry_sdk.init()  # no DSN: later tests send nothing
        rec.server.shutdown()
        rec.server.server_close()


def _settings(tiny_model: Path, tmp_path: Path, dsn: str, database_url: str) -> Settings:
    base = Settings.from_env(
        {
            "ENV": "production",
            "RACK_SERVICE_TOKEN": TOKEN,
            "RACK_SERVICE_TOKEN_NEXT": NEXT,
            "SENTRY_DSN": dsn,
            "INFISICAL_PROJECT_ID": "p",
            "INFISICAL_CLIENT_ID": "c",
            "INFISICAL_CLIENT_SECRET": CLIENT_SECRET,
            "CF_ACCESS_CLIENT_ID": "cf",
            "CF_ACCESS_CLIENT_SECRET": CF_SECRET,
            "FINBERT_MODEL": str(tiny_model),
            "HEROKU_SLUG_COMMIT": "0123456789abcdef0123",
        }
    )
    return replace(
        base,
        database_url=database_url,
        model_threads=1,
        model_artifact_dir=tmp_path / "no-artifact",
    )


def test_a_real_error_in_the_app_reaches_sentry_without_any_secret(
    recorder: Recorder, tiny_model: Path, tmp_path: Path
) -> None:
    # An empty database: the read API's query fails inside the app. No schema is an
    # outage (a 503 naming the fix), reported to Sentry once, with its traceback.
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    settings = _settings(tiny_model, tmp_path, recorder.dsn, empty)
    process = web.build_app(settings)
    app = TestApp(process)
    try:
        response = app.get(
            "/v1/scores/latest?tickers=AAPL",
            headers={"Authorization": f"Bearer {TOKEN}", "X-Debug": f"next={NEXT}"},
            expect_errors=True,
        )
        assert response.status_int == 503 and "alembic upgrade head" in response.text
        assert sentry_sdk.get_client().flush(timeout=10) is None
        with recorder.arrived:
            recorder.arrived.wait_for(lambda: "OperationalError" in recorder.text, timeout=10)
    finally:
        process.shutdown()
    text = recorder.text
    assert "no such table" in text  # the error itself arrived, with its frames
    assert '"environment":"production"' in text.replace(" ", "")
    assert "reasonator@1.0.0+0123456789ab" in text
    for secret in (TOKEN, NEXT, CLIENT_SECRET, CF_SECRET, TOKEN[:12], NEXT[:12]):
        assert secret not in text


def test_a_non_utf8_authorization_header_is_a_401_not_an_error_report(
    recorder: Recorder, tiny_model: Path, tmp_path: Path, database_url: str
) -> None:
    settings = _settings(tiny_model, tmp_path, recorder.dsn, database_url)
    process = web.build_app(settings)
    app = TestApp(process, lint=False)
    try:
        # WSGI passes header bytes as latin-1 text; 0xff is no UTF-8.
        environ = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}\xff"}
        response = app.get("/v1/scores/latest?tickers=AAPL", extra_environ=environ, status=401)
        assert response.json["error"] == "unauthorized"
        ok = app.get("/v1/scores/latest?tickers=AAPL", headers={"Authorization": f"Bearer {NEXT}"})
        assert ok.status_int == 200  # the next token is accepted during a rotation
        sentry_sdk.get_client().flush(timeout=10)
    finally:
        process.shutdown()
    assert TOKEN not in recorder.text and "UnicodeDecodeError" not in recorder.text


def test_frame_locals_and_breadcrumbs_are_scrubbed_by_value_and_check_ins_pass(
    recorder: Recorder, tiny_model: Path, tmp_path: Path
) -> None:
    db = f"postgresql+psycopg://app:{DB_PASSWORD}@127.0.0.1:9/x"
    settings = _settings(tiny_model, tmp_path, recorder.dsn, db)
    from scorer.ops.observability import init_sentry

    init_sentry(settings)
    sentry_sdk.add_breadcrumb(message=f"calling the vault with {CLIENT_SECRET}", category="x")

    def decode(header: str, url: str) -> None:
        header.encode("ascii")  # raises: the header holds a non-ASCII byte

    try:
        decode(f"Bearer {TOKEN}\xff and then a very long tail " + "x" * 2000, db)
    except UnicodeEncodeError:
        sentry_sdk.capture_exception()
    sentry_sdk.crons.capture_checkin(monitor_slug="reasonator-ingest", status="ok")
    sentry_sdk.get_client().flush(timeout=10)
    with recorder.arrived:
        recorder.arrived.wait_for(lambda: "check_in" in recorder.text, timeout=10)
    text = recorder.text
    assert "UnicodeEncodeError" in text and FILTERED in text
    assert '"monitor_slug":"reasonator-ingest"' in text.replace(" ", "")
    for secret in (TOKEN, TOKEN[:12], CLIENT_SECRET, DB_PASSWORD, CF_SECRET):
        assert secret not in text


def test_the_scrubber_filters_sensitive_keys_and_truncated_secrets() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": f"postgres://u:{DB_PASSWORD}@h/d",
            "RACK_SERVICE_TOKEN": TOKEN,
            "SENTRY_DSN": "https://dsnpublickey@o1.ingest.sentry.io/2",
        }
    )
    scrub = Scrubber(secret_values(settings))
    event = {
        "message": f"cut here: {TOKEN[:20]}...",
        "extra": {"nested": [{"password": "hunter2"}, {"note": f"url {DB_PASSWORD}"}]},
        "request": {"headers": {"Authorization": "Bearer abc"}},
        "check_in_id": "c1",
        "dsnpublickey": "dsnpublickey",
    }
    out = scrub.event(event)
    assert out["message"] == f"cut here: {FILTERED}..."
    assert out["extra"]["nested"] == [{"password": FILTERED}, {"note": f"url {FILTERED}"}]
    assert out["request"]["headers"]["Authorization"] == FILTERED
    assert out["check_in_id"] == "c1"
    assert release(settings) == "reasonator@1.0.0"


def test_library_chatter_stays_out_and_the_hub_prints_each_line_once(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from scorer.ops.observability import configure_logging
    from scorer.scoring.model.transformers_runtime import TransformersClassifier

    configure_logging()
    try:
        TransformersClassifier(settings.finbert_model, None, threads=1)
        logging.getLogger("apscheduler.scheduler").info("Adding job tentatively")
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        logging.getLogger("huggingface_hub.file_download").warning("a hub warning")
        logging.getLogger("scorer.scoring.model.loader").error("model load failed")
        err = capsys.readouterr().err
    finally:
        logging.basicConfig(force=True)  # back to pytest's capture
    assert "Adding job tentatively" not in err and "Retry 1/5" not in err
    assert err.count("a hub warning") == 1, err
    assert "ERROR scorer.scoring.model.loader: model load failed" in err
