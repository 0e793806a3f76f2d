"""The one outage classifier: real errors from both databases, sorted into outages
(unreachable, no schema) and bugs; and the watch's one line per change of state."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from scorer.storage.db import make_engine
from scorer.storage.outage import Outage, OutageWatch, classify


def _error(engine: Engine, sql: str) -> DBAPIError:
    with pytest.raises(DBAPIError) as info, engine.connect() as conn:
        conn.execute(text(sql))
    return info.value


def test_a_missing_table_or_column_is_no_schema_and_a_bad_statement_is_a_bug(
    engine: Engine,
) -> None:
    assert classify(_error(engine, "SELECT * FROM no_such_thing")) is Outage.NO_SCHEMA
    # Statements come from the tables' declarations: a column they name and the
    # database lacks is a migration not run, not a typo.
    assert classify(_error(engine, "SELECT no_such_column FROM feeds")) is Outage.NO_SCHEMA
    assert classify(_error(engine, "SELEC 1")) is None
    assert classify(_error(engine, "SELECT 1 / 'x' + ")) is None


def test_a_database_that_cannot_be_opened_is_unreachable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gone = make_engine(f"sqlite:///{tmp_path}/missing-dir/x.db")
    assert classify(_error(gone, "SELECT 1")) is Outage.UNREACHABLE
    refused = make_engine("postgresql+psycopg://u@127.0.0.1:9/x")  # nothing listens on 9
    assert classify(_error(refused, "SELECT 1")) is Outage.UNREACHABLE


def test_anything_else_is_not_an_outage() -> None:
    assert classify(ValueError("no")) is None


def test_the_watch_logs_each_change_once_with_the_duration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    reports: list[BaseException] = []
    watch = OutageWatch(clock=lambda: now[0], report=reports.append)
    caplog.set_level(logging.INFO, logger="scorer.storage.outage")
    boom = RuntimeError("x")
    watch.succeeded()
    for _ in range(50):
        watch.failed(Outage.UNREACHABLE, boom, "health")
        now[0] += 1
    watch.failed(Outage.NO_SCHEMA, boom, "a request")
    now[0] += 10
    watch.succeeded()
    watch.succeeded()
    assert [r.getMessage() for r in caplog.records] == [
        "database unreachable (RuntimeError, seen by health): " + Outage.UNREACHABLE.reason,
        "database no_schema (RuntimeError, seen by a request), was unreachable: "
        + Outage.NO_SCHEMA.reason,
        "database back (was no_schema for 60 s)",
    ]
    assert reports == [boom, boom]
