"""Shared fixtures: tiny models, migrated databases (SQLite and Postgres), a feed
server on 127.0.0.1, and settings."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from scorer.config import Settings
from scorer.db import make_engine, make_session_factory, migrate
from tests.tiny_model import build_tiny_model

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def permuted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-permuted"), permutation=(2, 0, 1))


def _postgres_url() -> str | None:
    return os.environ.get("TEST_POSTGRES_URL") or None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A fresh database on the test Postgres for this run, dropped at the end."""
    url = _postgres_url()
    if url is None:
        pytest.skip("TEST_POSTGRES_URL is not set (.ci/run sets it)")
    admin = create_engine(
        url.replace("postgres://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    name = f"reasonator_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield base
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a new SQLite file, or the Postgres test database
    with its tables emptied."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'test.db'}"
        engine = make_engine(url)
        migrate(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("postgres_server")
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "TRUNCATE feeds, articles, article_tickers, score_events, batch_score_jobs "
                "RESTART IDENTITY CASCADE"
            )
        )
    engine.dispose()
    yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine):  # type: ignore[no-untyped-def]
    return make_session_factory(engine)


class FeedServer:
    """Serves canned feeds on 127.0.0.1; ``routes`` maps a path to (status, body)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits.append(self.path)
                status, body = server.routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def serve_file(self, path: str, name: str) -> str:
        self.routes[path] = (200, (FIXTURES / "feeds" / name).read_bytes())
        return self.url(path)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(timeout=5)


@pytest.fixture
def settings(database_url: str, tiny_model: Path) -> Settings:
    base = Settings.from_env(
        {
            "RACK_SERVICE_TOKEN": TOKEN,
            "FINBERT_MODEL": str(tiny_model),
            "TICKERS": "AAPL,MSFT,TSLA,NVDA",
        }
    )
    return replace(base, database_url=database_url, torch_threads=1)
