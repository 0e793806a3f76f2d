"""Database outages: which errors are one, of what kind, and how they are told.

``classify(exc)`` is the one classifier the API, health and the jobs share: it says
whether a database error means the database cannot serve (unreachable, or reachable
but without its tables) rather than a bug in a statement, and which. ``OutageWatch``
turns a stream of failures and successes into one log line per change of state (with
the outage's duration when it ends) and one Sentry report per outage, however many
requests, probes or cycles meet it meanwhile.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from enum import Enum

from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

# Postgres SQLSTATEs of a schema the code does not find: a relation that does not
# exist (UndefinedTable), a column that does not (UndefinedColumn: a migration not run).
# Statements are built from the tables' declarations, so neither is a typo in one.
_SCHEMA_MISSING = frozenset({"42P01", "42703"})
# sqlite3 raises OperationalError for all of these: only a file that cannot be opened
# or read is an outage; any other OperationalError is a bad statement (a 500).
_SQLITE_UNREACHABLE = ("unable to open", "disk i/o error", "database is locked", "readonly")
_SQLITE_NO_SCHEMA = ("no such table", "no such column")


class Outage(Enum):
    """Why the database cannot serve; the value is what health shows as ``database``."""

    UNREACHABLE = "unreachable"  # refused, gone, timed out, connection lost, file missing
    # It answers, but its tables or columns are missing: created empty, or a release
    # whose migration has not run.
    NO_SCHEMA = "no_schema"

    @property
    def reason(self) -> str:
        """The public sentence for a 503: what is happening and, where there is one, the fix."""
        if self is Outage.NO_SCHEMA:
            return (
                "the database has no schema, or an older one than this release: "
                "run the release phase, `alembic upgrade head`"
            )
        return "the database is unreachable; retry later"


def classify(exc: BaseException) -> Outage | None:
    """The outage ``exc`` shows, or None when it is not one (a bug: let it be a 500)."""
    if isinstance(exc, sa_exc.TimeoutError):  # no connection from the pool in time
        return Outage.UNREACHABLE
    if not isinstance(exc, sa_exc.DBAPIError):
        return None
    if isinstance(exc.orig, sqlite3.Error):
        text = str(exc.orig).lower()
        if text.startswith(_SQLITE_NO_SCHEMA):
            return Outage.NO_SCHEMA
        return Outage.UNREACHABLE if any(s in text for s in _SQLITE_UNREACHABLE) else None
    if getattr(exc.orig, "sqlstate", None) in _SCHEMA_MISSING:
        return Outage.NO_SCHEMA
    if exc.connection_invalidated or isinstance(
        exc, sa_exc.OperationalError | sa_exc.InterfaceError
    ):
        return Outage.UNREACHABLE
    return None


def cause_name(exc: BaseException) -> str:
    """The driver's exception class (``OperationalError``, ``UndefinedTable``): what a
    log line names; the message itself may carry a host or a path."""
    return type(getattr(exc, "orig", None) or exc).__name__


def report_once(exc: BaseException) -> None:
    """Send ``exc`` with its traceback to Sentry when Sentry is set up (a no-op otherwise)."""
    import sentry_sdk  # only imported once an outage happens

    if sentry_sdk.get_client().is_active():
        sentry_sdk.capture_exception(exc)


class OutageWatch:
    """The state of one dependency (the database) as seen by everything in a process
    that uses it. ``failed`` and ``succeeded`` may be called from any thread, as often
    as requests come; only a change of state writes a WARNING line, and each outage
    (or change of its kind) is reported to Sentry once."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        report: Callable[[BaseException], None] = report_once,
    ) -> None:
        self._clock, self._report = clock, report
        self._mutex = threading.Lock()
        self.state: Outage | None = None
        self.since: float | None = None  # clock() when the current outage began

    def failed(self, outage: Outage, exc: BaseException, where: str) -> None:
        """``where`` (health, a request, the cycle) met ``outage``."""
        with self._mutex:
            if self.state is outage:
                return
            before, self.state = self.state, outage
            if self.since is None:
                self.since = self._clock()
        log.warning(
            "database %s (%s, seen by %s)%s: %s",
            outage.value,
            cause_name(exc),
            where,
            "" if before is None else f", was {before.value}",
            outage.reason,
        )
        self._report(exc)

    def succeeded(self) -> None:
        """The database answered a query on its tables."""
        if self.state is None:  # the common case: no lock, no work
            return
        with self._mutex:
            if self.state is None:
                return
            before, since = self.state, self.since
            self.state, self.since = None, None
        lasted = self._clock() - since if since is not None else 0.0
        log.warning("database back (was %s for %.0f s)", before.value, lasted)
