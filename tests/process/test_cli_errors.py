"""Every command with bad arguments, bad settings and an unreachable database or vault:
exit 2 for what the user must fix, 1 for an outage or a failure, one line on stderr,
never a traceback, and nothing written (docs/operations.md, "Exit codes").

The argument table runs in-process through ``main`` (each row would cost a Python
start as a subprocess); a few rows run as ``python -m scorer`` to hold the real entry
point, the release phase and the outage cases to the same rule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from scorer.config.settings import ConfigError, Settings, VaultUnreadable
from scorer.process import cli
from scorer.process.cli_errors import failure
from scorer.storage.db import DatabaseUnavailable, make_engine, make_session_factory
from scorer.storage.demo import DemoRefused
from scorer.storage.tables import BatchScoreJob

ROOT = Path(__file__).parents[2]
SUNDAY = datetime(2026, 12, 6, 15, 0, tzinfo=UTC)
MONDAY_EARLY = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)  # before the 14:30 UTC open

# (argv, what the one line on stderr says); every row exits 2.
WHOLE = "must be a whole number from 1 to"
BAD_ARGUMENTS = [
    ([], "the following arguments are required: COMMAND"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["serve", "--port", "1"], "unrecognized arguments: --port 1"),
    (["run-once", "extra"], "unrecognized arguments: extra"),
    (["prepare-model", "--gate"], "unrecognized arguments: --gate"),
    (["seed-demo", "--tickers", "0"], f"--tickers: {WHOLE} 1,000, got 0"),
    (["seed-demo", "--tickers", "-1"], f"--tickers: {WHOLE} 1,000, got -1"),
    (["seed-demo", "--tickers", "1_0"], f"--tickers: {WHOLE} 1,000, got '1_0'"),
    (["seed-demo", "--days", "0"], f"--days: {WHOLE} 3,650, got 0"),
    (["seed-demo", "--days", "-3"], f"--days: {WHOLE} 3,650, got -3"),
    (["seed-demo", "--days", "100000"], f"--days: {WHOLE} 3,650, got 100,000"),
    (["seed-demo", "--events", "-5"], f"--events: {WHOLE} 2,000,000, got -5"),
    (["seed-demo", "--events", "many"], f"--events: {WHOLE} 2,000,000, got 'many'"),
    (["rescore"], "the following arguments are required: --since"),
    (["rescore", "--since", "yesterday"], "--since: must be an ISO date or date-time"),
    (["rescore", "--since", "9999-12-31T23:59:59-14:00"], "from 1970-01-01 to 9999-12-31 UTC"),
    (["rescore", "--since", "1969-12-31"], "--since: must be from 1970-01-01"),
    (["rescore", "--since", "2026-11-01", "--until", "soon"], "--until: must be an ISO date"),
    (
        ["rescore", "--since", "2026-12-01", "--until", "2026-11-01"],
        "--until 2026-11-01T00:00:00Z is before --since 2026-12-01T00:00:00Z",
    ),
    (["rescore", "--since", "2099-01-01"], "--since 2099-01-01T00:00:00Z is in the future"),
    (["rollups"], "the following arguments are required: ACTION"),
    (["rollups", "prune"], "invalid choice: 'prune'"),
    (
        ["rollups", "rebuild", "--since", "1990-01-01"],
        "is before the market calendar's first day 2006-01-01 (New York time); leave --since",
    ),
    (
        ["rollups", "rebuild", "--since", "2006-01-01"],  # 2005-12-31 in New York
        "--since 2006-01-01T00:00:00Z is before the market calendar's first day",
    ),
    (["rollups", "rebuild", "--since", "2099-01-01"], "2099-01-01T00:00:00Z is in the future"),
    (["rollups", "rebuild", "--since", "1.1.2026"], "--since: must be an ISO date or date-time"),
    (["calendar", "--from", "2026-13-01"], "--from: must be an ISO date such as 2026-11-27"),
    (["calendar", "--from", "1990-01-01"], "--from: must be from 2006-01-01 to"),
    (["calendar", "--to", "2099-01-01"], "--to: must be from 2006-01-01 to"),
    (["calendar", "--from", "2026-12-10", "--to", "2026-12-01"], "2026-12-01 is before --from"),
    (["calendar", "--format", "xml"], "invalid choice: 'xml'"),
    (["retention", "--now"], "unrecognized arguments: --now"),
    (["db-stats", "--json"], "unrecognized arguments: --json"),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own exit
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "says"), BAD_ARGUMENTS, ids=[" ".join(a) or "(no command)" for a, _ in BAD_ARGUMENTS]
)
def test_a_bad_argument_exits_2_with_one_line_naming_it(
    argv: list[str],
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db = tmp_path / "untouched.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    code, err = _run(argv, capsys)
    line = _one_line(err)
    assert code == 2 and line.startswith("error: ") and says in line, line
    assert not db.exists()  # refused before anything was opened or written


def test_until_before_since_queues_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, err = _run(["rescore", "--since", "2026-12-01", "--until", "2026-11-01"], capsys)
    assert code == 2 and "is before --since" in _one_line(err)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(BatchScoreJob)) == 0
    engine.dispose()
    # The same command the right way round does queue one.
    assert _run(["rescore", "--since", "2026-11-01", "--until", "2026-12-01"], capsys)[0] == 0


@pytest.mark.parametrize("now", [SUNDAY, MONDAY_EARLY], ids=["sunday", "monday-before-open"])
def test_seed_demo_over_days_without_a_session_says_how_many_days_would_do(
    now: datetime,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db = tmp_path / "untouched.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{db}")
    args = cli.build_parser().parse_args(["seed-demo", "--days", "1"])
    assert cli.execute(cli.COMMANDS["seed-demo"], args, now=now) == 2
    line = _one_line(capsys.readouterr().err)
    smallest = 3 if now is MONDAY_EARLY else 2  # back to Friday's session
    assert line == (
        f"error: python -m scorer seed-demo: --days 1: no NYSE session opened in the last 1 day "
        f"({now.date().replace(day=now.day - 1)} to {now.date()}, New York); the smallest "
        f"--days with one is {smallest} (see python -m scorer seed-demo --help)"
    )
    assert not db.exists()


def test_an_unexpected_failure_is_one_line_and_its_traceback_only_with_debug(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(_ctx: cli.Context, _args: object) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setitem(cli.COMMANDS, "calendar", cli.Command(boom, cli.Purpose.CALENDAR, False))
    code, err = _run(["calendar"], capsys)
    assert code == 1
    assert _one_line(err).startswith("internal error: ZeroDivisionError: division by zero (a bug")
    code, err = _run(["--debug", "calendar"], capsys)
    assert code == 1 and "Traceback" in err and 'raise ZeroDivisionError("division by zero")' in err
    assert err.strip().splitlines()[-1].startswith("internal error: ZeroDivisionError")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def _scorer(*argv: str, database_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "INFISICAL_"))},
        "DATABASE_URL": database_url,
        "FEEDS": "none",
        **env,
    }
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.slow
def test_as_a_process_a_closed_port_is_an_outage_and_a_bad_scheme_a_setting() -> None:
    url = f"postgres://app:hunter2@127.0.0.1:{_closed_port()}/reasonator"
    host = url.split("@")[1].split("/")[0]
    outage = (
        f"outage: the database at {host} is unreachable: Connection refused; retry once it is back"
    )
    scheme = (
        "configuration error: DATABASE_URL: must be a postgres://, postgresql:// or sqlite:/// URL"
    )
    tickers = (
        "error: python -m scorer seed-demo: argument --tickers: must be a whole number from 1 to "
        "1,000, got 0 (see python -m scorer seed-demo --help)"
    )
    mysql = "mysql://u:hunter2@h/d"
    cases = [
        (["-m", "scorer", "db-stats"], url, 1, outage),
        (["-m", "alembic", "upgrade", "head"], url, 1, outage),
        (["-m", "scorer", "seed-demo"], mysql, 2, scheme),
        (["-m", "alembic", "upgrade", "head", "--sql"], mysql, 2, scheme),
        (["-m", "scorer", "seed-demo", "--tickers", "0"], url, 2, tickers),
    ]
    for argv, database_url, code, line in cases:
        done = _scorer(*argv, database_url=database_url)
        assert (done.returncode, done.stderr.strip().splitlines()) == (code, [line]), argv
        assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.slow
def test_as_a_process_an_unreachable_vault_is_an_outage(tmp_path: Path) -> None:
    vault = f"http://127.0.0.1:{_closed_port()}"
    done = _scorer(
        "-m",
        "scorer",
        "db-stats",
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        INFISICAL_PROJECT_ID="p",
        INFISICAL_CLIENT_ID="c",
        INFISICAL_CLIENT_SECRET="never-shown-secret",
        INFISICAL_API_URL=vault,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "outage: vault unreachable: ConnectionError (the vault at 127.0.0.1); retry once it is back"
    ]
    assert "never-shown-secret" not in done.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_as_a_process_a_missing_database_is_an_outage_and_an_unknown_role_a_setting(
    postgres_server: str,
) -> None:
    admin = create_engine(postgres_server)
    missing = admin.url.set(database="reasonator_no_such_database")
    stranger = admin.url.set(username="reasonator_no_such_role", password="hunter2")
    admin.dispose()
    host = f"{admin.url.host}:{admin.url.port or 5432}"
    cases = [
        (
            missing,
            1,
            f"outage: the database at {host} is unreachable: database "
            '"reasonator_no_such_database" does not exist; retry once it is back',
        ),
        (
            stranger,
            2,
            f"configuration error: DATABASE_URL: cannot connect to {host}: role "
            '"reasonator_no_such_role" does not exist',
        ),
    ]
    for url, code, line in cases:
        done = _scorer(
            "-m", "scorer", "retention", database_url=url.render_as_string(hide_password=False)
        )
        assert (done.returncode, done.stderr.strip().splitlines()) == (code, [line])
        assert "hunter2" not in done.stderr


@pytest.mark.parametrize(
    ("model", "artifact_dir", "says"),
    [
        ("./no-such-model", "art", "FINBERT_MODEL: no model directory named 'no-such-model'"),
        ("empty", "art", "FINBERT_MODEL: the directory 'empty' holds no model (no config.json"),
        ("model", "a-file/sub/art", "MODEL_ARTIFACT_DIR: cannot write 'art': "),
    ],
)
def test_prepare_model_refuses_a_bad_model_or_artifact_dir_before_building(
    model: str,
    artifact_dir: str,
    says: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    (tmp_path / "a-file").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FINBERT_MODEL", model if model.startswith(".") else str(tmp_path / model))
    monkeypatch.setenv("MODEL_ARTIFACT_DIR", str(tmp_path / artifact_dir))
    code, err = _run(["prepare-model", "--no-gate"], capsys)
    line = _one_line(err)
    assert code == 2 and line.startswith(f"configuration error: {says}"), line


def _operational(orig: Exception) -> Exception:
    from sqlalchemy.exc import OperationalError

    return OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (
            VaultUnreadable("vault unreachable: Timeout", reachable=False, authenticated=False),
            1,
            "outage: vault unreachable: Timeout (the vault at app.infisical.com); "
            "retry once it is back",
        ),
        (
            VaultUnreadable("vault login refused (HTTP 401)", reachable=True, authenticated=False),
            2,
            "configuration error: vault login refused (HTTP 401)",
        ),
        (
            DatabaseUnavailable("db.example.com:5432", "timeout expired"),
            1,
            "outage: the database at db.example.com:5432 is unreachable: timeout expired; "
            "retry once it is back",
        ),
        (
            _operational(Exception("server closed the connection unexpectedly")),
            1,
            "outage: the database stopped answering: OperationalError",
        ),
        (ConfigError("POLL_INTERVAL: bad"), 2, "configuration error: POLL_INTERVAL: bad"),
        (DemoRefused("real articles"), 2, "error: python -m scorer x refused: real articles"),
        (
            KeyError("boom"),
            1,
            "internal error: KeyError: 'boom' (a bug: the traceback went to Sentry when "
            "SENTRY_DSN is set; --debug prints it)",
        ),
    ],
)
def test_each_kind_of_failure_gets_its_code_and_line(exc: Exception, code: int, line: str) -> None:
    assert failure(exc, None, "python -m scorer x") == (
        code,
        line,
        code == 1 and "internal" in line,
    )


def test_an_unexpected_message_never_shows_a_secret(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgres://app:hunter2pw@db.example.com/d",
            "RACK_SERVICE_TOKEN": "t" * 20,
        },
        complete=False,
    )
    _, line, unexpected = failure(RuntimeError(f"bad {'t' * 20} hunter2pw"), settings, "p")
    assert unexpected and "hunter2pw" not in line and "t" * 20 not in line
