"""The console's browser tests: a seeded demo database, the real app served on
127.0.0.1 in a thread, a failing feed, and Debian's headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from jobs.ingest import ingest
from scorer.api import create_app
from scorer.config.settings import Settings
from scorer.ingest.fetch import FetchPolicy
from scorer.ingest.tagging import tagger_for
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage import demo
from scorer.storage.db import make_engine, make_session_factory, migrate
from tests.conftest import TOKEN
from tests.helpers.browser import serving
from tests.helpers.feed_server import StubServer, reply

WATCHLIST = demo.tickers(6)  # AAPL MSFT NVDA AMZN GOOGL META: the demo's first six
SAVED: list[Path] = []  # screenshots of this run, listed at the end (a test artefact)


@dataclass
class Site:
    url: str
    settings: Settings
    engine: Engine
    database_url: str

    def api(self, path: str, token: str = TOKEN) -> Any:
        """GET a path of the API with the token, as JSON."""
        response = requests.get(
            self.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()


def _settings(database_url: str, tiny_model: Path, tmp_path: Path, feeds: str) -> Settings:
    base = Settings.from_env(
        {
            "RACK_SERVICE_TOKEN": TOKEN,
            "FINBERT_MODEL": str(tiny_model),
            "TICKERS": ",".join(WATCHLIST),
            "FEEDS": feeds,
        }
    )
    return replace(
        base,
        database_url=database_url,
        model_threads=1,
        model_artifact_dir=tmp_path / "no-artifact",
        db_outage_grace=0,  # health says degraded at once when the database goes
    )


@pytest.fixture
def site(tiny_model: Path, tmp_path: Path, feed_server: StubServer) -> Iterator[Site]:
    """The app on a demo database (6 tickers, the last 10 days) with three feeds: one
    that works, one serving garbage and one on a closed port (both failing, backed off)."""
    folder = tmp_path / "db"  # its own folder: the outage helper renames it away
    folder.mkdir()
    database_url = f"sqlite:///{folder / 'console.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        demo.seed(session, n_tickers=len(WATCHLIST), n_events=1500, days=10, now=now)
    feed_server.serve_file("/wire.xml", "nasdaq_style.xml")
    feed_server.routes["/garbage.xml"] = reply(b"\x00\x01 this is not a feed <<<")
    feeds = " ".join(
        [
            f"AAPL={feed_server.url('/wire.xml')}",
            f"MSFT={feed_server.url('/garbage.xml')}",
            "NVDA=http://127.0.0.1:9/closed.xml",  # the discard port: nothing listens
        ]
    )
    settings = _settings(database_url, tiny_model, tmp_path, feeds)
    with requests.Session() as http:
        ingest(
            sessions,
            http,
            settings.feed_specs,
            tagger_for(settings.watchlist),
            now=now,
            policy=FetchPolicy(timeout=1.0, deadline=2.0),
        )
    loader = ModelLoader.loaded(TransformersClassifier(settings.finbert_model, None, threads=1))
    app = create_app(settings, engine=engine, loader=loader)
    with serving(app) as url:
        yield Site(url, settings, engine, database_url)
    engine.dispose()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SAVED:
        terminalreporter.write_sep("-", "console screenshots")
        for path in SAVED:
            terminalreporter.write_line(str(path))
