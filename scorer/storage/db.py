"""Engine and sessions for SQLite (the embedded default) and Postgres (psycopg 3)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, create_engine, event, make_url, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from scorer.config.settings import ConfigError, database_host
from scorer.storage.tables import Base, Meta

CONNECT_TIMEOUT = 2  # seconds; libpq's connect_timeout takes whole seconds


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
    # A dead database must fail a request fast (503 within 2 s), not hang it: libpq's
    # connect_timeout bounds a connection attempt to an unreachable host, pool_timeout
    # the wait for a free connection, and TCP keepalives notice a peer that vanished.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=2,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 2,
            "keepalives_count": 3,
        },
    )


class DatabaseUnavailable(Exception):
    """The database did not answer: connection refused, timed out, host not found, the
    database missing or the server shutting down. An outage to retry, told apart from
    a malformed or refused DATABASE_URL (ConfigError). The message names the host,
    never the password."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"the database at {host} is unreachable: {reason}")
        self.host = host
        self.reason = reason


def check_reachable(url: str) -> None:
    """Connect once (at most ``CONNECT_TIMEOUT`` seconds). Raise DatabaseUnavailable
    when the database does not answer (an outage: exit 1 in the CLI and the release
    phase), or ConfigError naming DATABASE_URL when the server refuses the credentials
    or the URL cannot work (exit 2). Both are one line naming the host, never the
    password."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DBAPIError as exc:
        host, reason = database_host(url), _reason(exc, url)
        if _is_refused_setting(exc):
            raise ConfigError(f"DATABASE_URL: cannot connect to {host}: {reason}") from None
        raise DatabaseUnavailable(host, reason) from None
    finally:
        engine.dispose()


# The server answered and refused who we are (a wrong user or password, no pg_hba
# entry), or the driver refused the URL's options: fixing DATABASE_URL is the cure.
_REFUSED_SETTING = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "password is required",
    "no pg_hba.conf entry",
    'role "',
    "invalid connection option",
    "invalid dsn",
    "invalid sslmode",
    "invalid integer value",
)
# A SQLite file that cannot be opened is a path that does not work (a missing
# directory, no permission), not a server that is down.
_SQLITE_BAD_PATH = ("unable to open",)


def _is_refused_setting(exc: DBAPIError) -> bool:
    """Whether a failed first connection is the setting's fault rather than an outage."""
    text = str(exc.orig).lower()
    if isinstance(exc.orig, sqlite3.Error):
        return any(sign in text for sign in _SQLITE_BAD_PATH)
    if not isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True  # the driver refused the URL itself (ProgrammingError and the like)
    return any(sign in text for sign in _REFUSED_SETTING)


def _reason(exc: DBAPIError, url: str) -> str:
    """The driver's first line, minus libpq's preamble, bounded, password scrubbed."""
    first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
    reason = first.rsplit("failed: ", 1)[-1].strip() or first
    reason = reason.removeprefix("FATAL:").strip()  # the server's severity says nothing here
    password = make_url(url).password
    if password:
        reason = reason.replace(str(password), "***")
    return reason[:200]


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

    config = Config(str(Path(__file__).resolve().parents[2] / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep the caller's logging as it is
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def meta_get(session: Session, key: str) -> str | None:
    """A value of the ``meta`` table (demo marker, pruning horizon), or None."""
    return session.scalar(select(Meta.value).where(Meta.key == key))


def meta_set(session: Session, key: str, value: str) -> None:
    """Set a ``meta`` value (insert or replace)."""
    table = cast(Table, Meta.__table__)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(key=key, value=value)
    session.execute(stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value}))
