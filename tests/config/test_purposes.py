"""One entry for settings: ``load_settings(purpose)``. Each purpose reads the vault or
skips it, and checks completeness or not, as declared; ``calendar`` reads the vault's
market window; nothing outside the settings module builds settings another way."""

from __future__ import annotations

import ast
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from scorer.config.settings import (
    ConfigError,
    Purpose,
    VaultUnreadable,
    load_settings,
)
from scorer.process.cli import main
from tests.helpers.fake_vault import FakeVault, serving

ROOT = Path(__file__).parents[2]
TOKEN = secrets.token_urlsafe(32)
LOGIN = "/api/v1/auth/universal-auth/login"

# What each purpose is meant to do, written out here rather than read from Purpose, so
# that flipping a purpose's rule fails a test: (reads the vault, must be complete).
EXPECTED = {
    Purpose.SERVE: (False, False),
    Purpose.GUNICORN_MASTER: (False, False),
    Purpose.BOOTSTRAP: (False, False),
    Purpose.WEB: (True, True),
    Purpose.WORKER: (True, True),
    Purpose.CLI: (True, True),
    Purpose.BUILD: (True, False),
    Purpose.CALENDAR: (True, False),
    Purpose.MIGRATE: (False, False),
}
READS_VAULT = [p for p, (vault, _) in EXPECTED.items() if vault]
SKIPS_VAULT = [p for p, (vault, _) in EXPECTED.items() if not vault]


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    folder = {
        "RACK_SERVICE_TOKEN": TOKEN,
        "MARKET_WINDOW": "extended",
        "MARKET_LEAD_MINUTES": "60",
        "FINBERT_MODEL_SHA": "rev-from-vault",
    }
    with serving(FakeVault(folders={("prod", "/rack"): folder})) as running:
        yield running


def test_every_purpose_is_listed_here() -> None:
    assert set(EXPECTED) == set(Purpose)


@pytest.mark.parametrize("purpose", READS_VAULT, ids=lambda p: p.label)
def test_these_purposes_read_the_vault_when_it_is_configured(
    purpose: Purpose, vault: FakeVault
) -> None:
    settings = load_settings(purpose, vault.env(ENV="production"))
    assert vault.calls[LOGIN] == 1 and vault.calls["/api/v4/secrets"] == 1
    assert settings.market_window == "extended" and settings.market_lead_minutes == 60
    assert settings.finbert_model_sha == "rev-from-vault"
    assert settings.service_token == TOKEN


@pytest.mark.parametrize("purpose", SKIPS_VAULT, ids=lambda p: p.label)
def test_these_purposes_never_ask_the_vault(purpose: Purpose, vault: FakeVault) -> None:
    # In production with no token in the environment: only an incomplete purpose passes.
    settings = load_settings(purpose, vault.env(ENV="production"))
    assert sum(vault.calls.values()) == 0
    assert settings.market_window == "regular" and settings.finbert_model_sha == "unknown"
    assert settings.service_token is None


@pytest.mark.parametrize("purpose", READS_VAULT, ids=lambda p: p.label)
def test_a_dead_vault_is_an_outage_not_a_bad_setting(purpose: Purpose, vault: FakeVault) -> None:
    vault.down = True
    with pytest.raises(VaultUnreadable, match="vault unreachable") as info:
        load_settings(purpose, vault.env(ENV="production"))
    assert not info.value.reachable and not info.value.authenticated
    assert isinstance(info.value, ConfigError)  # the CLI still says it in one line, exit 2


@pytest.mark.parametrize("purpose", SKIPS_VAULT, ids=lambda p: p.label)
def test_a_dead_vault_stops_none_of_the_others(purpose: Purpose, vault: FakeVault) -> None:
    vault.down = True
    load_settings(purpose, vault.env(ENV="production"))
    assert sum(vault.calls.values()) == 0


@pytest.mark.parametrize("purpose", list(Purpose), ids=lambda p: p.label)
def test_only_complete_purposes_require_the_token(purpose: Purpose) -> None:
    env = {"ENV": "production"}  # no vault configured, no token
    if EXPECTED[purpose][1]:
        with pytest.raises(ConfigError, match="RACK_SERVICE_TOKEN is required"):
            load_settings(purpose, env)
    else:
        assert load_settings(purpose, env).service_token is None


def test_migrate_reads_the_database_url_alone() -> None:
    env = {"DATABASE_URL": "postgres://u:pw@db.example.com/d", "POLL_INTERVAL": "soon"}
    url = load_settings(Purpose.MIGRATE, env).database_url
    assert url == "postgresql+psycopg://u:pw@db.example.com/d"
    with pytest.raises(ConfigError, match="POLL_INTERVAL"):
        load_settings(Purpose.SERVE, env)
    with pytest.raises(ConfigError, match=r"^DATABASE_URL: names no database"):
        load_settings(Purpose.MIGRATE, {"DATABASE_URL": "postgres://u:pw@db.example.com"})


def test_calendar_polls_by_the_vaults_market_window(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The runbook's config: only the bootstrap keys; MARKET_WINDOW lives in the vault.
    for name, value in vault.env(ENV="production").items():
        monkeypatch.setenv(name, value)
    assert main(["calendar", "--from", "2026-11-27", "--to", "2026-11-27"]) == 0
    assert "poll extended 13:30-19:00 UTC" in capsys.readouterr().out
    assert vault.calls[LOGIN] == 1
    # An environment variable still wins over the vault.
    monkeypatch.setenv("MARKET_WINDOW", "regular")
    assert main(["calendar", "--from", "2026-11-27", "--to", "2026-11-27"]) == 0
    assert "poll regular 14:30-18:00 UTC" in capsys.readouterr().out


def test_calendar_with_a_dead_vault_says_so_in_one_line(
    vault: FakeVault, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vault.down = True
    for name, value in vault.env(ENV="production").items():
        monkeypatch.setenv(name, value)
    # An outage, not a bad setting: exit 1, naming the vault's host.
    assert main(["calendar", "--from", "2026-11-27", "--to", "2026-11-27"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "outage: vault unreachable: login answered HTTP 503 (the vault at 127.0.0.1); "
        "retry once it is back\n"
    )


def _calls(path: Path, name: str) -> list[int]:
    """Lines of ``path`` that call ``name`` (a bare name or an attribute)."""
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (getattr(node.func, "id", None) == name or getattr(node.func, "attr", None) == name)
    ]


def test_every_entry_point_goes_through_load_settings() -> None:
    sources = [
        p
        for folder in ("scorer", "jobs", "rack", "alembic")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p != ROOT / "scorer" / "config" / "settings.py"
    ]
    builders = {str(p.relative_to(ROOT)): _calls(p, "from_env") for p in sources}
    assert {path: lines for path, lines in builders.items() if lines} == {}
    using = {str(p.relative_to(ROOT)) for p in sources if _calls(p, "load_settings")}
    assert {
        "alembic/env.py",
        "scorer/process/cli.py",
        "scorer/process/gunicorn_conf.py",
        "scorer/process/web.py",
    } <= using
