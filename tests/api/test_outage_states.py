"""The read API and health through a database recreated empty (no schema) and one
refusing connections: 503s that say which and what to do, health's ``database`` state,
one log line per change of state (never a traceback per request), one Sentry report
per outage, and recovery without a restart once the schema is back."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import Engine
from webtest import TestApp

from jobs.score import score_pending
from scorer.api import create_app
from scorer.api.openapi import document
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.db import migrate
from scorer.storage.outage import Outage, OutageWatch
from scorer.storage.store import store_items
from tests.helpers.items import AUTH, NOW
from tests.helpers.items import item as _item
from tests.helpers.outage import no_schema, outage

READS = (
    "/v1/scores/latest?tickers=AAPL",
    "/v1/scores/history?ticker=AAPL",
    "/v1/scores/history?ticker=AAPL&interval=1h",
    "/v1/articles",
    "/v1/tickers",
    "/v1/feeds",
)


class Served:
    """An app as create_app builds it, with a hand-moved clock and a fake Sentry."""

    def __init__(self, settings: Settings, engine: Engine, loader: ModelLoader) -> None:
        self.now = [1000.0]
        self.reports: list[BaseException] = []
        self.outages = OutageWatch(clock=lambda: self.now[0], report=self.reports.append)
        self.app = TestApp(
            create_app(
                settings,
                engine=engine,
                loader=loader,
                clock=lambda: self.now[0],
                outages=self.outages,
            )
        )

    def health(self, status: int = 200) -> dict[str, object]:
        self.now[0] += 6  # past the probe's 5 s cache: every call is a refresh
        body: dict[str, object] = self.app.get("/v1/health", status=status).json
        return body


@pytest.fixture
def served(settings: Settings, engine: Engine, sessions) -> Served:  # type: ignore[no-untyped-def]
    loader = ModelLoader.loaded(TransformersClassifier(settings.finbert_model, None, threads=1))
    with sessions.begin() as session:
        store_items(session, [_item("a", "Apple shares surge", {"AAPL"})], now=NOW)
    assert loader.classifier is not None
    score_pending(sessions, loader.classifier, now=lambda: NOW)
    return Served(settings, engine, loader)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_reads_without_a_schema_are_503s_naming_the_fix_and_recover_after_migrating(
    served: Served, database_url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    assert served.health()["database"] == "ok"
    caplog.set_level(logging.INFO)
    with no_schema(database_url, engine):
        for url in READS:
            response = served.app.get(url, headers=AUTH, status=503)
            assert response.json == {"error": "unavailable", "message": Outage.NO_SCHEMA.reason}
            assert "alembic upgrade head" in response.json["message"], url
            assert int(response.headers["Retry-After"]) > 0
        within = served.health()
        assert within["status"] == "ok" and within["database"] == "no_schema"
        served.now[0] += 61
        degraded = served.health(503)
        assert degraded["status"] == "degraded" and degraded["database"] == "no_schema"
        health_schema = document()["components"]["schemas"]["Health"]["properties"]
        assert "no_schema" in health_schema["database"]["enum"], "the contract lists it"
        assert "no schema" in str(degraded["reason"]) and "alembic upgrade head" in str(
            degraded["reason"]
        )
        during = _records(caplog)
    # Back without a restart: the same app answers from the migrated (empty) database.
    assert served.app.get(READS[0], headers=AUTH).json == {
        "data": [],
        "missing": ["AAPL"],
        "unwatched": [],
    }
    for url in READS[1:]:
        served.app.get(url, headers=AUTH, status=200)
    assert served.health()["database"] == "ok"

    assert [r.getMessage() for r in during] == [
        "database no_schema (UndefinedTable, seen by a request): " + Outage.NO_SCHEMA.reason
        if "postgres" in database_url
        else "database no_schema (OperationalError, seen by a request): " + Outage.NO_SCHEMA.reason
    ], "one line for the whole outage"
    assert all(r.exc_info is None for r in caplog.records), "no traceback in the log"
    assert len(served.reports) == 1, "Sentry hears of the outage once"
    back = [r.getMessage() for r in _records(caplog)[len(during) :]]
    assert len(back) == 1 and back[0].startswith("database back (was no_schema for ")


def test_an_unreachable_database_logs_one_line_each_way_and_no_traceback(
    served: Served, database_url: str, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    assert served.health()["database"] == "ok"
    caplog.set_level(logging.INFO)
    with outage(database_url, engine):
        for _ in range(8):  # a keep-alive and a panel polling, within the grace period
            assert served.health()["database"] == "unreachable"
            served.app.get(READS[0], headers=AUTH, status=503)
        served.now[0] += 120
    assert served.health()["database"] == "ok"

    lines = [r.getMessage() for r in _records(caplog)]
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unreachable (") and "seen by health" in lines[0]
    assert lines[1].startswith("database back (was unreachable for ")
    assert int(lines[1].split(" for ")[1].split(" ")[0]) >= 120, "the outage's duration"
    assert all(r.exc_info is None for r in caplog.records)
    assert len(served.reports) == 1


def test_a_schema_that_is_dropped_after_an_outage_is_a_new_report(
    served: Served, database_url: str, engine: Engine
) -> None:
    with outage(database_url, engine):
        served.health()
    with no_schema(database_url, engine):
        assert served.health()["database"] == "no_schema"
    assert len(served.reports) == 2, "each kind of outage is reported once"


def test_a_probe_failing_for_another_reason_says_error_and_logs_its_traceback_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from scorer.api.health import DatabaseProbe

    def broken() -> None:
        raise RuntimeError("a bug in the probe")

    now = [0.0]
    probe = DatabaseProbe(broken, clock=lambda: now[0])  # type: ignore[arg-type]
    for _ in range(5):
        now[0] += 6
        probe.get("m", "r")
    assert probe.state == "error" and probe.reason(70.0).startswith("database probe failing")
    tracebacks = [r for r in caplog.records if r.exc_info is not None]
    assert len(tracebacks) == 1 and tracebacks[0].levelno == logging.ERROR


def _downgrade(engine: Engine, revision: str) -> None:
    from alembic.config import Config

    from alembic import command

    config = Config(str(Path(__file__).resolve().parents[2] / "alembic.ini"))
    config.attributes["configure_logger"] = False
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def test_a_release_whose_migration_has_not_run_is_a_no_schema_503_not_a_500(
    served: Served, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The code is releases ahead of the database (0012 adds ``score_events.method``,
    ``scope`` and ``highlights``, which every article lists): a missing column is the
    schema behind, told like a missing table, never a 500."""
    assert served.health()["database"] == "ok"
    _downgrade(engine, "0011")
    try:
        engine.dispose()
        # /v1/articles reads the columns; /v1/tickers never names them and keeps answering.
        response = served.app.get("/v1/articles", headers=AUTH, status=503)
        assert response.json == {"error": "unavailable", "message": Outage.NO_SCHEMA.reason}
        assert "older one than this release" in response.json["message"]
        served.app.get("/v1/tickers", headers=AUTH, status=200)
        assert all(r.exc_info is None for r in caplog.records), "no traceback in the log"
    finally:
        migrate(engine)
    served.app.get("/v1/articles", headers=AUTH, status=200)
    assert served.health()["database"] == "ok"
