"""One scheduler per deployment: the process holding this lock runs the jobs, the
others serve reads only. Postgres advisory lock in production, a file lock on SQLite.

Make the lock inside the worker, after gunicorn forks: a forked child would share the
parent's lock connection or open file and both would believe they lead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# Seconds a held lock's connection is trusted before ``held`` checks it again: health's
# refresh interval (scorer/api/health.py), so its role is true within one refresh.
HELD_CHECK = 5.0
# Seconds ``held`` waits for that check; past it, it answers with what it knew.
HELD_WAIT = 0.5


class SchedulerLock(Protocol):
    def try_acquire(self) -> bool:
        """Non-blocking: True if this process holds the lock now (or already did)."""
        ...

    def release(self) -> None:
        """Give the lock up; safe to call when not held."""
        ...

    @property
    def held(self) -> bool: ...


def make_lock(engine: Engine, *, name: str = "reasonator-scheduler") -> SchedulerLock:
    """The lock named ``name`` for the database ``engine`` points at."""
    if engine.dialect.name == "postgresql":
        return PostgresLock(engine, name)
    database = engine.url.database
    if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
        # An in-memory database lives and dies with this process: no other process
        # can run jobs against it, so there is nothing to exclude.
        return ProcessLock()
    return FileLock(f"{database}.scheduler.lock")


def lock_key(name: str) -> int:
    """A stable signed 64-bit key (what ``pg_try_advisory_lock(bigint)`` takes)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresLock:
    """A session-level advisory lock held on one connection kept for the process's life.

    Postgres releases a session lock when its connection ends, and the OS closes the
    socket when a process dies, even on SIGKILL: so the old dyno of an overlapping
    deploy hands over as soon as it is gone, with no lease to expire.

    If the server drops the connection between checks, another process may lead
    before this one notices on its next call; the jobs are idempotent, so that
    brief overlap costs duplicate work, not duplicate rows. ``held`` checks the
    connection at most every ``check_every`` seconds (health asks it on every
    request), so a lost lock is not reported as held for longer than that.
    """

    def __init__(
        self,
        engine: Engine,
        name: str,
        *,
        check_every: float = HELD_CHECK,
        wait: float = HELD_WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = lock_key(name)
        self._check_every, self._wait, self._clock = check_every, wait, clock
        self._checked = float("-inf")  # clock() when the connection last answered
        self._checking: threading.Thread | None = None
        self._check_mutex = threading.Lock()
        # Its own engine with NullPool: a pooled connection would be handed to a
        # request or reset on return, and the lock would go with it. AUTOCOMMIT so
        # the kept connection never sits "idle in transaction". Keepalives and a TCP
        # user timeout so a vanished server fails the check within a minute instead
        # of hanging it for the OS's fifteen.
        self._engine = create_engine(
            engine.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "connect_timeout": 10,
                "keepalives_idle": 30,
                "keepalives_interval": 10,
                "keepalives_count": 3,
                "tcp_user_timeout": 30_000,  # milliseconds
            },
        )
        self._conn: Connection | None = None
        self._mutex = threading.Lock()
        self._unreachable = False  # said so once: every tick of an outage would repeat it
        # Lost with its connection and not taken again yet: ``held`` keeps asking for it
        # (as the ticks would, but they only run in market hours), until it is taken
        # again or found held by another process.
        self._lost = False

    @property
    def held(self) -> bool:
        """Whether this process holds the lock, checked on its connection when the last
        check is older than ``check_every`` (in a thread: a dead server must not hang
        health; the caller waits at most ``wait`` seconds). A connection found dead is
        dropped and the lock asked for again, as ``try_acquire`` does, on each check
        until it is taken again or another process is found holding it."""
        if self._conn is None and not self._lost:
            return False
        if self._clock() - self._checked >= self._check_every:
            with self._check_mutex:
                if self._checking is None:
                    self._checked = self._clock()  # one check per interval, whatever it finds
                    self._checking = threading.Thread(
                        target=self._check, name="lock-check", daemon=True
                    )
                    self._checking.start()
                checking = self._checking
            checking.join(self._wait)
        return self._conn is not None

    def _check(self) -> None:
        try:
            self.try_acquire()
        finally:
            with self._check_mutex:
                self._checking = None

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._conn is not None:
                try:
                    self._conn.execute(text("SELECT 1"))
                    self._checked = self._clock()
                    return True
                except DBAPIError as exc:
                    # The lock died with the connection; try again on a new one.
                    log.warning("scheduler lock lost with its connection: %s", exc.orig)
                    self._close()
                    self._lost = True
            try:
                conn = self._engine.connect()
                got = conn.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}
                ).scalar_one()
            except DBAPIError as exc:
                if not self._unreachable:
                    log.warning("scheduler lock: cannot reach the database: %s", exc.orig)
                self._unreachable = True
                return False
            if self._unreachable:
                log.warning("scheduler lock: the database answers again")
                self._unreachable = False
            self._lost = False  # taken again, or another process holds it: a reader
            if got:
                self._conn, self._checked = conn, self._clock()
                log.info("scheduler lock acquired: this process runs the jobs")
            else:
                conn.close()  # a follower keeps no idle connection open
            return bool(got)

    def release(self) -> None:
        with self._mutex:
            self._lost = False
            if self._conn is not None:
                # Unlock before hanging up: the server ends the session, and frees the
                # lock, only moments after the client closes, and a successor polling
                # right then would be refused.
                with contextlib.suppress(DBAPIError):
                    self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(DBAPIError):  # already dead, and the lock with it
                conn.close()


class FileLock:
    """``flock`` on a file beside the SQLite database; the OS drops it when the process
    dies. Locks belong to the open file, so two opens in one process also exclude."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None
        self._mutex = threading.Lock()

    @property
    def held(self) -> bool:
        """Held, and still on the file at the path (a stat: cheap enough to ask each time)."""
        fd = self._fd
        return fd is not None and self._same_file(fd)

    def _same_file(self, fd: int) -> bool:
        # Deleting the lock file would let another process lock a new file at the same
        # path: then this lock guards nothing any more.
        try:
            return os.stat(self._path).st_ino == os.fstat(fd).st_ino
        except OSError:  # the path is gone, or fd was closed meanwhile
            return False

    def try_acquire(self) -> bool:
        with self._mutex:
            if self._fd is not None:
                if self._same_file(self._fd):
                    return True
                log.warning("scheduler lock file was replaced: lock lost")
                self._close()
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True

    def release(self) -> None:
        with self._mutex:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock


class ProcessLock:
    """For an in-memory SQLite database: always acquirable, held until released."""

    def __init__(self) -> None:
        self._held = False

    @property
    def held(self) -> bool:
        return self._held

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def release(self) -> None:
        self._held = False
