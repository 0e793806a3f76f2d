"""One scheduler per deployment: the lock excludes other locks, other processes, and
hands over when its holder dies or loses its connection."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from scorer.market.lock import SchedulerLock, lock_key, make_lock
from scorer.storage.db import make_engine

ROOT = Path(__file__).parents[2]

# Holds the lock named argv[2] on the database argv[1], says so, then waits on stdin.
CHILD = """
import sys
from scorer.storage.db import make_engine
from scorer.market.lock import make_lock
lock = make_lock(make_engine(sys.argv[1]), name=sys.argv[2])
print("held" if lock.try_acquire() else "not held", flush=True)
sys.stdin.read()
"""

MakeLock = Callable[[str, str], SchedulerLock]


@pytest.fixture
def locks() -> Iterator[MakeLock]:
    """Makes locks on fresh engines (one per lock, as separate processes would have),
    all released and disposed at the end."""
    made: list[tuple[SchedulerLock, Engine]] = []

    def make(url: str, name: str) -> SchedulerLock:
        engine = make_engine(url)
        lock = make_lock(engine, name=name)
        made.append((lock, engine))
        return lock

    yield make
    for lock, engine in made:
        lock.release()
        engine.dispose()


@pytest.fixture
def start_holder() -> Iterator[Callable[[str, str], subprocess.Popen[str]]]:
    """Starts a child process that takes the lock; every child is killed at the end."""
    children: list[subprocess.Popen[str]] = []

    def start(url: str, name: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, name],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()
        child.wait(timeout=10)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


def read_line(child: subprocess.Popen[str], timeout: float = 30) -> str:
    """The child's next line of output, or a failure if none comes in time."""
    assert child.stdout is not None
    with ThreadPoolExecutor(max_workers=1) as pool:
        # If this times out, killing the child at teardown ends the pending read.
        return pool.submit(child.stdout.readline).result(timeout=timeout).strip()


def eventually(check: Callable[[], bool], seconds: float = 10) -> bool:
    """Polls ``check`` every 0.1 s until it holds or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def kill(child: subprocess.Popen[str]) -> None:
    """SIGKILL, as Heroku does 30 s after SIGTERM: no cleanup code runs."""
    child.kill()
    child.wait(timeout=10)


def test_the_key_is_a_stable_signed_64_bit_integer() -> None:
    key = lock_key("reasonator-scheduler")
    assert key == lock_key("reasonator-scheduler")
    assert -(2**63) <= key < 2**63
    assert key != lock_key("another-scheduler")


# SQLite


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'scorer.storage.db'}"


def test_a_second_lock_on_the_same_sqlite_file_waits_for_the_first(
    locks: MakeLock, sqlite_url: str, tmp_path: Path
) -> None:
    first, second = locks(sqlite_url, "jobs"), locks(sqlite_url, "jobs")

    assert first.try_acquire()
    assert first.try_acquire()  # already held: still True
    assert not second.try_acquire()
    assert (first.held, second.held) == (True, False)
    assert (tmp_path / "scorer.storage.db.scheduler.lock").exists()

    first.release()
    first.release()  # idempotent
    assert not first.held
    assert second.try_acquire()
    assert not first.try_acquire()


def test_it_notices_when_the_lock_file_is_replaced(locks: MakeLock, sqlite_url: str) -> None:
    first, second = locks(sqlite_url, "jobs"), locks(sqlite_url, "jobs")
    assert first.try_acquire()

    os.remove(sqlite_url.removeprefix("sqlite:///") + ".scheduler.lock")
    assert second.try_acquire()  # locks a new file at the same path

    assert not first.try_acquire()
    assert not first.held


def test_an_in_memory_database_is_always_acquirable(locks: MakeLock) -> None:
    lock = locks("sqlite://", "jobs")
    assert lock.try_acquire()
    assert lock.held
    lock.release()
    assert not lock.held


@pytest.mark.slow
def test_a_process_holding_the_sqlite_lock_excludes_others_until_it_dies(
    locks: MakeLock, start_holder: Callable[[str, str], subprocess.Popen[str]], sqlite_url: str
) -> None:
    child = start_holder(sqlite_url, "jobs")
    assert read_line(child) == "held"
    parent = locks(sqlite_url, "jobs")
    assert not parent.try_acquire()

    kill(child)

    assert eventually(parent.try_acquire, seconds=10)


# Postgres


@pytest.fixture
def pg_name() -> str:
    """A lock name of its own for each test: the database is shared by the session."""
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def admin(postgres_server: str) -> Iterator[Engine]:
    engine = create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def holder_pid(admin: Engine, name: str) -> int | None:
    """The backend holding the advisory lock ``name``, seen from outside the lock.

    pg_locks splits a bigint key into classid (high 32 bits) and objid (low 32 bits).
    """
    key = lock_key(name) & 0xFFFF_FFFF_FFFF_FFFF
    with admin.connect() as conn:
        pid = conn.execute(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = :hi AND objid = :lo AND objsubid = 1"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFF_FFFF},
        ).scalar_one_or_none()
    return None if pid is None else int(pid)


def terminate(admin: Engine, pid: int) -> None:
    """Ends a backend as a failover or an admin would, then waits until it is gone."""
    with admin.connect() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": pid}).scalar()


def test_an_unreachable_database_is_not_held_and_its_password_stays_out_of_the_log(
    locks: MakeLock, caplog: pytest.LogCaptureFixture
) -> None:
    # Port 1 on loopback refuses at once: no server needed.
    lock = locks("postgresql+psycopg://scorer:s3cret-pw@127.0.0.1:1/reasonator", "jobs")

    assert not lock.try_acquire()
    assert not lock.held
    assert "cannot reach the database" in caplog.text
    assert "s3cret-pw" not in caplog.text


@pytest.mark.postgres
def test_the_postgres_lock_excludes_another_session_until_released(
    locks: MakeLock, postgres_server: str, admin: Engine, pg_name: str
) -> None:
    first, second = locks(postgres_server, pg_name), locks(postgres_server, pg_name)

    assert first.try_acquire()
    assert first.try_acquire()
    assert not second.try_acquire()
    assert holder_pid(admin, pg_name) is not None

    first.release()
    first.release()
    assert holder_pid(admin, pg_name) is None  # at once: release unlocks, not just hangs up
    assert second.try_acquire()
    assert (first.held, second.held) == (False, True)


def other_backends(admin: Engine) -> int:
    """Sessions on the test database besides the one asking."""
    with admin.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    return int(count)


@pytest.mark.postgres
def test_a_follower_keeps_no_connection_open(
    locks: MakeLock, postgres_server: str, admin: Engine, pg_name: str
) -> None:
    leader, follower = locks(postgres_server, pg_name), locks(postgres_server, pg_name)
    assert leader.try_acquire()
    # Other tests' pools may hold connections to this database, and backends of
    # earlier tests may still be exiting: compare with what is open now.
    baseline = other_backends(admin)

    for _ in range(3):
        assert not follower.try_acquire()

    assert eventually(lambda: other_backends(admin) <= baseline, seconds=5)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_process_holding_the_postgres_lock_hands_over_when_killed(
    locks: MakeLock,
    start_holder: Callable[[str, str], subprocess.Popen[str]],
    postgres_server: str,
    pg_name: str,
) -> None:
    child = start_holder(postgres_server, pg_name)
    assert read_line(child) == "held"
    parent = locks(postgres_server, pg_name)
    assert not parent.try_acquire()

    kill(child)

    assert eventually(parent.try_acquire, seconds=10)


@pytest.mark.postgres
def test_a_lost_connection_is_noticed_and_the_lock_taken_again(
    locks: MakeLock, postgres_server: str, admin: Engine, pg_name: str
) -> None:
    lock = locks(postgres_server, pg_name)
    assert lock.try_acquire()
    lost = holder_pid(admin, pg_name)
    assert lost is not None

    terminate(admin, lost)

    assert lock.try_acquire()  # nobody else took it: reconnect and hold again
    assert lock.held
    now = holder_pid(admin, pg_name)
    assert now is not None and now != lost


@pytest.mark.postgres
def test_a_lost_connection_is_noticed_when_another_process_took_over(
    locks: MakeLock, postgres_server: str, admin: Engine, pg_name: str
) -> None:
    first, second = locks(postgres_server, pg_name), locks(postgres_server, pg_name)
    assert first.try_acquire()
    lost = holder_pid(admin, pg_name)
    assert lost is not None

    terminate(admin, lost)
    assert second.try_acquire()

    assert not first.try_acquire()
    assert not first.held
    second.release()
    assert first.try_acquire()


@pytest.mark.postgres
def test_held_turns_false_within_one_check_when_another_process_took_over(
    postgres_server: str, admin: Engine, pg_name: str
) -> None:
    from scorer.market.lock import PostgresLock

    now = [0.0]
    engines = [make_engine(postgres_server) for _ in range(2)]
    first = PostgresLock(engines[0], pg_name, check_every=5.0, clock=lambda: now[0])
    second = PostgresLock(engines[1], pg_name)
    try:
        assert first.try_acquire() and first.held
        lost = holder_pid(admin, pg_name)
        assert lost is not None
        terminate(admin, lost)
        assert second.try_acquire()
        assert first.held, "trusted until the next check: no query per health request"
        now[0] += 5.0  # one health refresh later
        assert not first.held
        assert (first.held, second.held) == (False, True)
    finally:
        for lock in (first, second):
            lock.release()
        for engine in engines:
            engine.dispose()


@pytest.mark.postgres
def test_held_takes_the_lock_again_when_its_connection_died_and_nobody_took_it(
    postgres_server: str, admin: Engine, pg_name: str
) -> None:
    from scorer.market.lock import PostgresLock

    now = [0.0]
    engine = make_engine(postgres_server)
    lock = PostgresLock(engine, pg_name, clock=lambda: now[0])
    try:
        assert lock.try_acquire()
        lost = holder_pid(admin, pg_name)
        assert lost is not None
        terminate(admin, lost)
        now[0] += 5.0
        assert lock.held
        again = holder_pid(admin, pg_name)
        assert again is not None and again != lost
    finally:
        lock.release()
        engine.dispose()


def test_held_is_false_once_the_lock_file_is_replaced(locks: MakeLock, sqlite_url: str) -> None:
    lock = locks(sqlite_url, "jobs")
    assert lock.try_acquire() and lock.held
    path = Path(sqlite_url.removeprefix("sqlite:///") + ".scheduler.lock")
    path.unlink()
    path.touch()
    assert not lock.held


def test_an_unreachable_database_is_logged_once_not_on_every_try(
    locks: MakeLock, caplog: pytest.LogCaptureFixture
) -> None:
    lock = locks("postgresql+psycopg://scorer@127.0.0.1:1/reasonator", "jobs")
    for _ in range(5):
        assert not lock.try_acquire()
    assert caplog.text.count("cannot reach the database") == 1


@pytest.mark.postgres
def test_a_lock_lost_in_an_outage_is_taken_again_by_held_once_the_database_is_back(
    postgres_server: str, admin: Engine, pg_name: str
) -> None:
    from scorer.market.lock import PostgresLock
    from tests.helpers.outage import Outage

    now = [0.0]
    engine = make_engine(postgres_server)
    lock = PostgresLock(engine, pg_name, clock=lambda: now[0])
    down = Outage(postgres_server)
    try:
        assert lock.try_acquire()
        down.start()  # refuses connections and ends the open ones, the lock's too
        now[0] += 5.0
        assert not lock.held, "lost, and the database refuses a new connection"
        down.end()
        assert not lock.held, "not checked again within the interval"
        now[0] += 5.0
        assert lock.held, "taken again on the next check, with no tick"
        assert holder_pid(admin, pg_name) is not None
    finally:
        down.end()
        lock.release()
        engine.dispose()
