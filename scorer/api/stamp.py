"""The newest score event id (``max(score_events.id)``), the stamp the latest and
articles caches are checked against, read once per wave of concurrent requests.

Each caller gets the result of a read that *began after the caller did*, so every
score committed before a request began is counted in the stamp it is served by (the
freshness rule: a committed score is served at once). Callers that arrive while a read
is under way wait for the next read, which one of them makes; so under load one read
answers all the requests that arrived during the previous one, instead of a read per
request. The read runs on a connection of its own in autocommit (no pool checkout, no
pre-ping, no BEGIN/ROLLBACK: one round trip on Postgres); a disconnect is retried once
on a new connection, as the pool's pre-ping would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import exc as sa_exc

SQL = "SELECT max(id) FROM score_events"


class SharedRead:
    """``read`` called on behalf of concurrent callers: each call returns the result of
    a call of ``read`` that began after it did (or raises what that call raised). One
    call runs at a time; the callers that arrive meanwhile wait for the next one, which
    the first of them makes."""

    def __init__(self, read: Callable[[], Any]) -> None:
        self._read = read
        self._cond = threading.Condition(threading.Lock())
        self._started = 0  # calls of read begun so far, numbered 1, 2, ...
        self._done = 0  # the number of the newest finished call
        self._reading = False
        self._value: Any = None
        self._error: BaseException | None = None  # the newest call's failure
        self.reads = 0  # calls of read made (for tests and benches)

    def __call__(self) -> Any:
        with self._cond:
            wanted = self._started + 1  # the first call to begin after this one did
            while self._done < wanted:
                if not self._reading:
                    self._reading = True
                    self._started += 1
                    number = self._started
                    break
                self._cond.wait()
            else:
                if self._error is not None:
                    raise self._error
                return self._value
        value: Any = None
        error: BaseException | None = None
        try:
            self.reads += 1
            value = self._read()
        except Exception as exc:  # handed to the waiters too, then raised
            error = exc
            raise
        finally:  # whatever happened, the waiters wake (and one of them may read again)
            with self._cond:
                self._reading = False
                self._done, self._value, self._error = number, value, error
                self._cond.notify_all()
        return value


class StampReader:
    """``read()``: the stamp, from a read that began after the call did."""

    def __init__(self, engine: Engine, sql: str = SQL) -> None:
        self._engine, self._sql = engine, sql
        self._shared = SharedRead(self._query)
        self._lock = threading.Lock()  # for close(), against a read under way
        self._conn: Connection | None = None
        self._pool: Any = None  # the pool self._conn came from (engine.dispose swaps it)
        self._raw: Any = None  # the driver's cursor on self._conn

    def read(self) -> Any:
        """The stamp. Raises what the read raised (a DBAPIError during an outage)."""
        return self._shared()

    def _query(self) -> Any:
        # Only one read runs at a time (``_reading``), so the connection is not shared.
        # On the driver's own cursor: SQLAlchemy's execution path costs more than the
        # read itself. Its errors are wrapped as SQLAlchemy's would be, for
        # scorer/storage/outage.py and the API's 503.
        with self._lock:
            return self._query_once()

    def _query_once(self) -> Any:
        dialect = self._engine.dialect
        for attempt in (1, 2):
            cursor = self._cursor()
            try:
                cursor.execute(self._sql)
                row = cursor.fetchone()
                return None if row is None else row[0]
            except dialect.loaded_dbapi.Error as exc:
                gone = dialect.is_disconnect(
                    exc, self._conn.connection if self._conn else None, cursor
                )
                self._drop()
                if attempt == 1 and gone:
                    continue
                raise sa_exc.DBAPIError.instance(
                    self._sql,
                    None,
                    exc,
                    dialect.loaded_dbapi.Error,
                    connection_invalidated=gone,
                    dialect=dialect,
                ) from exc
        raise AssertionError("unreachable")

    def _cursor(self) -> Any:
        pool = self._engine.pool
        if self._conn is not None and self._pool is not pool:
            # engine.dispose() dropped the pool's connections: drop ours too, so that a
            # database taken away (a SQLite file moved) is noticed as every other read.
            self._drop()
        if self._conn is None:
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._conn, self._pool = conn, pool
            self._raw = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        return self._raw

    def _drop(self) -> None:
        conn, self._conn, self._raw = self._conn, None, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001 -- a broken connection may fail to close
                pass

    def close(self) -> None:
        with self._lock:
            self._drop()
