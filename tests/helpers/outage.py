"""Take a test database away and bring it back, for the outage tests.

Postgres: the test session's own database refuses new connections
(``ALTER DATABASE … ALLOW_CONNECTIONS false``) and its open ones are terminated
(``pg_terminate_backend``) — the shared server keeps running for everyone else.
SQLite: the directory holding the file is renamed away, so opening it fails with
"unable to open database file", and renamed back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text


class Outage:
    def __init__(self, database_url: str, *engines: Engine) -> None:
        self.url, self.engines = database_url, engines
        self.down = False

    def start(self) -> None:
        if self.url.startswith("sqlite"):
            folder = Path(self.url.removeprefix("sqlite:///")).parent
            os.rename(folder, f"{folder}-away")
        else:
            name = make_url(self.url).database
            with self._admin() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
        for engine in self.engines:
            engine.dispose()  # SQLite keeps an open file working: drop idle connections
        self.down = True

    def end(self) -> None:
        if not self.down:
            return
        if self.url.startswith("sqlite"):
            folder = Path(self.url.removeprefix("sqlite:///")).parent
            os.rename(f"{folder}-away", folder)
        else:
            with self._admin() as conn:
                name = make_url(self.url).database
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        self.down = False

    @contextmanager
    def _admin(self) -> Iterator[object]:
        admin_url = os.environ["TEST_POSTGRES_URL"].replace(
            "postgresql://", "postgresql+psycopg://", 1
        )
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                yield conn
        finally:
            admin.dispose()


@contextmanager
def outage(database_url: str, *engines: Engine) -> Iterator[Outage]:
    """The database is unreachable inside the block (and back after it, whatever happens)."""
    down = Outage(database_url, *engines)
    down.start()
    try:
        yield down
    finally:
        down.end()


@contextmanager
def no_schema(database_url: str, engine: Engine) -> Iterator[None]:
    """The database answers but has no tables inside the block, as after ``DROP
    DATABASE … WITH (FORCE)`` and ``CREATE DATABASE`` (Postgres: exactly that; SQLite:
    every table dropped); migrated again after it, as the release phase would."""
    if database_url.startswith("sqlite"):
        from scorer.storage.tables import Base

        with engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.exec_driver_sql("DROP TABLE alembic_version")
    else:
        name = make_url(database_url).database
        with Outage(database_url)._admin() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield
    finally:
        from scorer.storage.db import migrate

        migrate(engine)
