"""The jobs through an outage: a cycle that meets an unreachable database or one
without its schema stops without raising, the log gets one WARNING per change of
state (not one per cycle, never a traceback), and the first cycle that reaches the
database again says so with the outage's length."""

from __future__ import annotations

import logging

import pytest

from scorer.config.settings import Settings
from scorer.process.service import Service
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from tests.helpers.outage import no_schema, outage


@pytest.fixture
def service(settings: Settings):  # type: ignore[no-untyped-def]
    classifier = TransformersClassifier(settings.finbert_model, None, threads=1)
    service = Service(settings, loader=ModelLoader.loaded(classifier))
    yield service
    service.stop()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_cycles_in_an_outage_log_one_line_each_way(
    service: Service, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert service.run_cycle().outage is None
    caplog.set_level(logging.INFO)
    with outage(database_url, service.engine):
        for _ in range(4):
            assert service.run_cycle().outage is not None
    service.engine.dispose()  # SQLite: reopen the file that came back
    assert service.run_cycle().outage is None
    lines = _warnings(caplog)
    assert len(lines) == 2, lines
    assert lines[0].startswith("database unreachable (") and "seen by the cycle" in lines[0]
    assert lines[1].startswith("database back (was unreachable for ")
    assert all(r.exc_info is None for r in caplog.records)


def test_a_cycle_without_a_schema_stops_without_raising(
    service: Service, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with no_schema(database_url, service.engine):
        stopped = service.run_cycle()
        assert stopped.outage is not None and service.outages.state is not None
        assert service.outages.state.value == "no_schema"
    assert service.run_cycle().outage is None and service.outages.state is None
    assert all(r.exc_info is None for r in caplog.records)
