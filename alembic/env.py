"""Alembic environment: migrates the database named by DATABASE_URL (SQLite if unset)."""

from __future__ import annotations

import sys
from logging.config import fileConfig

from alembic import context
from scorer.config.settings import ConfigError, Purpose, load_settings
from scorer.storage.db import DatabaseUnavailable, check_reachable, make_engine
from scorer.storage.tables import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url(*, reachable: bool) -> str:
    """DATABASE_URL, checked (and, online, reached), or exit with one line naming it and
    the host, no traceback: 2 for a malformed or refused setting, 1 for an outage (the
    exit codes of ``python -m scorer``; docs/operations.md, "Exit codes")."""
    try:
        url = load_settings(Purpose.MIGRATE).database_url
        if reachable:
            check_reachable(url)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except DatabaseUnavailable as exc:
        print(f"outage: {exc}; retry once it is back", file=sys.stderr)
        sys.exit(1)
    return url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(reachable=False),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # Tests hand in a connection; the release phase builds one from the environment.
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # The release phase's log: one line naming DATABASE_URL and the host, no traceback.
    engine = make_engine(_database_url(reachable=True))
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
