"""Engine and sessions for SQLite (the embedded default) and Postgres (psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from scorer.models import Base


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine tuned for a small web process that also runs the jobs."""
    if url.startswith("sqlite"):
        # WAL lets readers go on while the score job writes; the busy timeout makes a
        # second writer (``run-once`` beside a server) wait instead of failing.
        # pool_size: keep a connection per web thread; past the pool, every request
        # would open (and run the pragmas on) a new one and close it again.
        engine = create_engine(
            url,
            pool_size=pool_size,
            connect_args={"timeout": 30, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=2, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def insert_ignoring_conflicts(
    session: Session, model: type[Base], rows: Iterable[Mapping[str, Any]], conflict: list[str]
) -> int:
    """Insert rows, skipping those that collide on ``conflict``; return how many went in.

    Idempotency lives here: a second scorer or a retried batch inserts nothing twice.
    """
    rows = list(rows)
    if not rows:
        return 0
    table = cast(Table, model.__table__)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(rows).on_conflict_do_nothing(index_elements=conflict)
    # RETURNING counts what went in on both databases (rowcount is -1 here on psycopg).
    return len(session.execute(stmt.returning(table.c[conflict[0]])).all())


def migrate(engine: Engine) -> None:
    """``alembic upgrade head`` on this engine (what the release phase runs)."""
    from alembic.config import Config

    from alembic import command

    config = Config(str(Path(__file__).resolve().parent.parent / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep the caller's logging as it is
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
