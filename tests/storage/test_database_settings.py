"""A bad or unreachable DATABASE_URL stops the process with one line naming the variable
and the host, never the password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scorer.config.settings import ConfigError, Settings
from scorer.storage.db import DatabaseUnavailable, check_reachable

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (
            "postgres://u:hunter2@db.example.com:notaport/d",
            "port that is not a number from 1 to 65535 (host db.example.com)",
        ),
        ("postgres://u:hunter2@db.example.com:99999/d", "(host db.example.com)"),
        ("postgres://", "names no host"),
        ("postgres://u:hunter2@/d", "names no host"),
        ("postgres://u:hunter2@db.example.com", "names no database (host db.example.com)"),
        ("postgres://u:hunter2@db.example.com/", "names no database"),
        ("sqlite:x", "sqlite:///"),
        ("sqlite://", "sqlite:///"),
        ("mysql://u:hunter2@h/d", "postgres://"),
    ],
)
def test_a_malformed_database_url_is_refused_naming_it(raw: str, says: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"DATABASE_URL": raw})
    message = str(info.value)
    assert message.startswith("DATABASE_URL: ") and says in message
    assert "hunter2" not in message and "\n" not in message


def test_a_socket_url_with_a_host_parameter_is_accepted() -> None:
    url = "postgres:///reasonator?host=/var/run/postgresql"
    assert Settings.from_env({"DATABASE_URL": url}).database_url.endswith(url[len("postgres") :])


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("postgresql+psycopg://u:hunter2@127.0.0.1:1/d", "127.0.0.1:1"),
        ("postgresql+psycopg://u:hunter2@no-such-host.invalid:5432/d", "no-such-host.invalid:5432"),
    ],
)
def test_an_unreachable_database_is_an_outage_naming_the_host(url: str, host: str) -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        check_reachable(url)
    message = str(info.value)
    assert message.startswith(f"the database at {host} is unreachable: ")
    assert "hunter2" not in message and "\n" not in message


def test_a_sqlite_file_that_cannot_be_opened_is_a_setting() -> None:
    with pytest.raises(ConfigError) as info:
        check_reachable("sqlite:////nonexistent-dir/reasonator.db")
    assert str(info.value) == (
        "DATABASE_URL: cannot connect to reasonator.db: unable to open database file"
    )


@pytest.mark.postgres
def test_a_missing_database_is_an_outage_and_an_unknown_role_a_setting(
    postgres_server: str,
) -> None:
    from sqlalchemy import make_url

    base = make_url(postgres_server)
    with pytest.raises(DatabaseUnavailable, match='database "reasonator_none" does not exist'):
        check_reachable(base.set(database="reasonator_none").render_as_string(False))
    stranger = base.set(username="reasonator_nobody", password="hunter2")
    with pytest.raises(ConfigError, match='role "reasonator_nobody" does not exist') as info:
        check_reachable(stranger.render_as_string(False))
    assert "hunter2" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize("command", [["run-once"], ["rescore", "--since", "2026-11-01"]])
def test_the_cli_stops_an_outage_with_one_line_and_no_traceback(command: list[str]) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DATABASE_URL": "postgres://app:hunter2@127.0.0.1:1/reasonator",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "scorer", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "outage: the database at 127.0.0.1:1 is unreachable: Connection refused; "
        "retry once it is back"
    ]
    assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.slow
def test_the_release_phase_stops_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "postgres://app:hunter2@127.0.0.1:1/reasonator"}
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "outage: the database at 127.0.0.1:1 is unreachable: Connection refused; "
        "retry once it is back"
    )
    assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
