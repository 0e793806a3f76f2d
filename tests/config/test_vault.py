"""Settings from the vault: login and read, Cloudflare headers, wrong credentials,
precedence, the runbook's vault check, and the boot path with only the runbook's keys."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from webtest import TestApp

from scorer.config.settings import ConfigError, Purpose, Settings, load_settings, vault_health
from scorer.config.vault import VaultError, read_folder
from scorer.process import web
from tests.helpers.fake_vault import CF_SECRET, CLIENT_SECRET, FakeVault, serving
from tests.helpers.waiting import eventually

ROOT = Path(__file__).parents[2]
TOKEN = secrets.token_urlsafe(32)
NEXT_TOKEN = secrets.token_urlsafe(32)
DSN_KEY = "dsnkey0123456789"


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    folder = {
        "RACK_SERVICE_TOKEN": TOKEN,
        "SENTRY_DSN": f"http://{DSN_KEY}@127.0.0.1:9/1",
        "FINBERT_MODEL_SHA": "unknown",
    }
    with serving(FakeVault(folders={("prod", "/rack"): folder})) as running:
        yield running


def test_it_logs_in_and_reads_the_rack_folder_sending_the_cf_headers(vault: FakeVault) -> None:
    settings = load_settings(Purpose.CLI, vault.env(ENV="production"))
    assert settings.service_token == TOKEN and settings.sentry_dsn
    assert vault.calls == {"/api/v1/auth/universal-auth/login": 1, "/api/v4/secrets": 1}
    assert not vault.refused


def test_the_environment_slug_follows_env_unless_overridden(vault: FakeVault) -> None:
    vault.folders[("staging", "/rack")] = {"RACK_SERVICE_TOKEN": NEXT_TOKEN}
    assert load_settings(Purpose.CLI, vault.env(ENV="staging")).service_token == NEXT_TOKEN
    pinned = vault.env(ENV="staging", INFISICAL_ENVIRONMENT="prod")
    assert load_settings(Purpose.CLI, pinned).service_token == TOKEN


def test_without_the_cloudflare_headers_the_login_is_refused(vault: FakeVault) -> None:
    env = vault.env(ENV="production")
    del env["CF_ACCESS_CLIENT_SECRET"]
    with pytest.raises(ConfigError, match="vault login refused"):
        load_settings(Purpose.CLI, env)
    assert vault.refused["cloudflare"] == 1


def test_wrong_credentials_are_refused_without_echoing_them(vault: FakeVault) -> None:
    env = vault.env(ENV="production", INFISICAL_CLIENT_SECRET="wrong-secret-value")
    with pytest.raises(ConfigError, match=r"vault login refused \(HTTP 401\)") as info:
        load_settings(Purpose.CLI, env)
    assert "wrong-secret-value" not in str(info.value)
    assert vault.refused["login"] == 1 and vault.calls["/api/v4/secrets"] == 0


def test_a_vault_that_is_down_or_absent_is_unreachable(vault: FakeVault) -> None:
    vault.down = True
    with pytest.raises(VaultError, match="vault unreachable") as info:
        read_folder(_config(vault))
    assert not info.value.reachable
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = vault.env(ENV="production", INFISICAL_API_URL=f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="vault unreachable: ConnectionError"):
        load_settings(Purpose.CLI, env)


def _config(vault: FakeVault):  # type: ignore[no-untyped-def]
    from scorer.config.settings import vault_config

    return vault_config(Settings.from_env(vault.env(ENV="production"), complete=False))


def test_an_environment_variable_wins_over_the_vault_and_the_log_names_keys_only(
    vault: FakeVault, caplog: pytest.LogCaptureFixture
) -> None:
    vault.folders[("prod", "/rack")]["FINBERT_MODEL_SHA"] = "from-the-vault"
    vault.folders[("prod", "/rack")]["DATABASE_URL"] = "postgres://u:vaultpw@h/d"
    env = vault.env(ENV="production", FINBERT_MODEL_SHA="from-the-env")
    with caplog.at_level(logging.INFO, logger="scorer.config.settings"):
        settings = load_settings(Purpose.CLI, env)
    assert settings.finbert_model_sha == "from-the-env"
    assert settings.service_token == TOKEN  # only in the vault
    assert settings.database_url == "sqlite:///reasonator.db"  # never from the vault
    line = caplog.text
    assert "from the vault: RACK_SERVICE_TOKEN, SENTRY_DSN" in line
    assert "environment over vault: FINBERT_MODEL_SHA" in line
    assert "ignored from the vault: DATABASE_URL" in line
    for value in (TOKEN, "vaultpw", DSN_KEY, CLIENT_SECRET, CF_SECRET, "from-the-vault"):
        assert value not in line


def test_the_next_token_is_checked_like_the_current_one() -> None:
    env = {"ENV": "production", "RACK_SERVICE_TOKEN": TOKEN, "RACK_SERVICE_TOKEN_NEXT": "short"}
    with pytest.raises(ConfigError, match="RACK_SERVICE_TOKEN_NEXT"):
        Settings.from_env(env)
    env["RACK_SERVICE_TOKEN_NEXT"] = NEXT_TOKEN
    assert Settings.from_env(env).service_tokens == (TOKEN, NEXT_TOKEN)


def test_vault_health_names_keys_and_never_a_value(vault: FakeVault) -> None:
    report = vault_health(vault.env(ENV="production"))
    assert report == {
        "reachable": True,
        "authenticated": True,
        "environment": "prod",
        "path": "/rack/",
        "found": ["RACK_SERVICE_TOKEN", "SENTRY_DSN", "FINBERT_MODEL_SHA"],
        "missing": [],
        "others": [],
    }
    del vault.folders[("prod", "/rack")]["SENTRY_DSN"]
    assert vault_health(vault.env(ENV="production"))["missing"] == ["SENTRY_DSN"]
    refused = vault_health(vault.env(ENV="production", INFISICAL_CLIENT_SECRET="nope-nope"))
    assert refused["reachable"] and not refused["authenticated"]
    text = json.dumps([report, refused])
    for value in (TOKEN, DSN_KEY, CLIENT_SECRET, CF_SECRET, "nope-nope"):
        assert value not in text


def test_the_runbooks_vault_check_command_works_verbatim(vault: FakeVault) -> None:
    env = {**_clean_env(), **vault.env(ENV="production")}
    for module in ("rack.config", "scorer.config.settings"):
        out = subprocess.run(
            [sys.executable, "-c", f"from {module} import vault_health; print(vault_health())"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "'reachable': True, 'authenticated': True" in out.stdout
        assert TOKEN not in out.stdout + out.stderr


def _clean_env() -> dict[str, str]:
    """The test process's environment less every setting (conftest removed them)."""
    return dict(os.environ)


def test_the_release_phase_needs_only_the_database_url(tmp_path: Path, vault: FakeVault) -> None:
    # The runbook's keys point at a vault that is down: alembic must not ask it.
    vault.down = True
    db = tmp_path / "release.db"
    env = {**_clean_env(), **vault.env(ENV="production"), "DATABASE_URL": f"sqlite:///{db}"}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert db.stat().st_size > 0
    assert sum(vault.calls.values()) == 0


@pytest.fixture
def booting_env(
    vault: FakeVault, database_url: str, tiny_model: Path, tmp_path: Path
) -> dict[str, str]:
    """Only the runbook's keys (and the add-on's DATABASE_URL) in the environment; the
    model settings come from the vault too."""
    vault.folders[("prod", "/rack")].update(
        FINBERT_MODEL=str(tiny_model),
        MODEL_ARTIFACT_DIR=str(tmp_path / "no-artifact"),
        MODEL_THREADS="1",
        SENTRY_DSN="",  # not this test's subject
    )
    return vault.env(ENV="production", FLAG_REASONATOR="true", DATABASE_URL=database_url)


def test_the_worker_serves_at_once_while_the_vault_is_down_then_boots(
    booting_env: dict[str, str], vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in booting_env.items():
        monkeypatch.setenv(name, value)
    vault.down = True
    monkeypatch.setattr("scorer.process.boot.FIRST_BACKOFF", 0.05)
    monkeypatch.setattr("scorer.process.boot.MAX_BACKOFF", 0.2)
    process = web.build_app()
    app = TestApp(process)
    try:
        eventually(lambda: vault.calls["/api/v1/auth/universal-auth/login"] >= 2)
        health = app.get("/v1/health", expect_errors=True)
        assert health.status_int == 503
        assert health.json["status"] == "warming_up"
        assert health.json["reason"].startswith("vault unreachable")
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        # No token is known yet: the read API never serves.
        latest = app.get("/v1/scores/latest?tickers=AAPL", headers=bearer, expect_errors=True)
        assert latest.status_int == 401

        vault.down = False
        eventually(lambda: app.get("/v1/health", expect_errors=True).status_int == 200)
        assert app.get("/v1/health").json["flag_reasonator"] is True
        assert app.get("/v1/scores/latest?tickers=AAPL", headers=bearer).status_int == 200
        other = {"Authorization": f"Bearer {NEXT_TOKEN}"}
        assert app.get("/v1/scores/latest", headers=other, expect_errors=True).status_int == 401
    finally:
        process.shutdown()


def test_a_vault_without_the_token_keeps_health_503_naming_it(
    booting_env: dict[str, str], vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    del vault.folders[("prod", "/rack")]["RACK_SERVICE_TOKEN"]
    for name, value in booting_env.items():
        monkeypatch.setenv(name, value)
    process = web.build_app()
    app = TestApp(process)
    try:
        eventually(lambda: "reason" in app.get("/v1/health", expect_errors=True).json)
        eventually(
            lambda: (
                "RACK_SERVICE_TOKEN is required"
                in app.get("/v1/health", expect_errors=True).json["reason"]
            )
        )
    finally:
        process.shutdown()


@pytest.mark.slow
def test_gunicorn_binds_at_once_with_only_the_runbooks_keys(
    vault: FakeVault, tiny_model: Path, tmp_path: Path
) -> None:
    vault.folders[("prod", "/rack")].update(
        FINBERT_MODEL=str(tiny_model), MODEL_ARTIFACT_DIR=str(tmp_path / "none"), SENTRY_DSN=""
    )
    vault.down = True
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **_clean_env(),
        **vault.env(ENV="production", FLAG_REASONATOR="false"),
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'boot.db'}",
        "FEEDS": "none",  # a subprocess is not under pytest-socket: poll nothing
    }
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True
    )
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", *web_command()], cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    try:
        status, body = _get(port, "/v1/health", started)
        bound = time.monotonic() - started
        assert status == 503 and "vault" in str(body["reason"])
        assert bound < 10
        eventually(
            lambda: str(_get(port, "/v1/health", started)[1]["reason"]).startswith(
                "vault unreachable"
            )
        )
        assert _get(port, "/v1/scores/latest", started, token=TOKEN)[0] == 401
        vault.down = False
        deadline = time.monotonic() + 90
        while _get(port, "/v1/health", started)[0] != 200:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.2)
        status, _ = _get(port, "/v1/scores/latest?tickers=AAPL", started, token=TOKEN)
        assert status == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    log = err.decode()
    assert "from the vault: FINBERT_MODEL, FINBERT_MODEL_SHA, MODEL_ARTIFACT_DIR, " in log
    assert "RACK_SERVICE_TOKEN; from the environment: CF_ACCESS_CLIENT_ID" in log
    assert TOKEN not in log and CLIENT_SECRET not in log and CF_SECRET not in log


def web_command() -> tuple[str, ...]:
    from scorer.process.cli import WEB_COMMAND

    return WEB_COMMAND


def _get(
    port: int, path: str, started: float, token: str | None = None
) -> tuple[int, dict[str, object]]:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while True:
        try:
            response = requests.get(f"http://127.0.0.1:{port}{path}", headers=headers, timeout=5)
            return response.status_code, response.json()
        except requests.ConnectionError:
            assert time.monotonic() - started < 30, "gunicorn did not bind"
            time.sleep(0.05)
