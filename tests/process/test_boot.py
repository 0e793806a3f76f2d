"""The web worker while its settings are not known yet (scorer/process/boot.py): what
the environment alone allows is served (the OpenAPI document, and the reads when the
environment holds the token, which wins over the vault), health's reason says what
is really happening and names the vault's host, never a credential."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from webtest import TestApp

from scorer.api.openapi import document
from scorer.config.settings import ConfigError, Settings
from scorer.process import web
from scorer.process.boot import Booting
from tests.helpers.fake_vault import CLIENT_SECRET, FakeVault, serving
from tests.helpers.waiting import eventually

TOKEN = secrets.token_urlsafe(32)
OTHER = secrets.token_urlsafe(32)


@pytest.fixture
def vault(tiny_model: Path, tmp_path: Path) -> Iterator[FakeVault]:
    folder = {
        "RACK_SERVICE_TOKEN": OTHER,  # the environment's must win over this one
        "FINBERT_MODEL_SHA": "unknown",
        "FINBERT_MODEL": str(tiny_model),
        "MODEL_ARTIFACT_DIR": str(tmp_path / "no-artifact"),
        "MODEL_THREADS": "1",
    }
    with serving(FakeVault(folders={("prod", "/rack"): folder})) as running:
        yield running


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("scorer.process.boot.FIRST_BACKOFF", 0.05)
    monkeypatch.setattr("scorer.process.boot.MAX_BACKOFF", 0.2)


def _setenv(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_with_the_vault_down_the_environments_token_reads_and_openapi_is_public(
    vault: FakeVault, database_url: str, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    _setenv(
        monkeypatch,
        **vault.env(ENV="production", DATABASE_URL=database_url, RACK_SERVICE_TOKEN=TOKEN),
    )
    vault.down = True
    process = web.build_app()
    app = TestApp(process)
    try:
        eventually(lambda: vault.calls["/api/v1/auth/universal-auth/login"] >= 2)
        health = app.get("/v1/health", status=503).json
        host = vault.url.removeprefix("http://")
        assert (
            health["reason"] == f"vault unreachable: login answered HTTP 503 (the vault at {host})"
        )
        assert CLIENT_SECRET not in str(health) and TOKEN not in str(health)
        assert app.get("/v1/openapi.json", status=200).json == document()
        assert app.head("/v1/openapi.json", status=200).body == b""
        mine = {"Authorization": f"Bearer {TOKEN}"}
        read = app.get("/v1/scores/latest?tickers=AAPL", headers=mine, status=200).json
        assert read == {"data": [], "missing": ["AAPL"], "unwatched": []}, (
            "served from the database"
        )
        for other in ({"Authorization": f"Bearer {OTHER}"}, {}):
            app.get("/v1/scores/latest?tickers=AAPL", headers=other, status=401)

        vault.down = False
        eventually(lambda: app.get("/v1/health", expect_errors=True).status_int == 200)
        app.get("/v1/scores/latest?tickers=AAPL", headers=mine, status=200)
        app.get(
            "/v1/scores/latest?tickers=AAPL",
            headers={"Authorization": f"Bearer {OTHER}"},
            status=401,
        )
    finally:
        process.shutdown()


def test_without_a_token_anywhere_reads_are_401_and_openapi_still_200(
    vault: FakeVault, database_url: str, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    _setenv(monkeypatch, **vault.env(ENV="production", DATABASE_URL=database_url))
    vault.down = True
    process = web.build_app()
    app = TestApp(process)
    try:
        assert "reason" in app.get("/v1/health", status=503).json
        app.get("/v1/openapi.json", status=200)
        bearer = {"Authorization": f"Bearer {OTHER}"}
        assert app.get("/v1/tickers", headers=bearer, status=401).json["error"] == "unauthorized"
    finally:
        process.shutdown()


def test_the_first_reason_names_the_vaults_host() -> None:
    booting = TestApp(Booting(dict, lambda s: None, vault_host="vault.example:8443"))  # type: ignore[arg-type, return-value]
    reason = booting.get("/v1/health", status=503).json["reason"]
    assert reason == "reading settings from the vault at vault.example:8443"


def test_without_a_vault_the_reason_never_mentions_one(
    monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    unready = TestApp(Booting(dict, lambda s: None))  # type: ignore[arg-type, return-value]
    assert "vault" not in unready.get("/v1/health", status=503).json["reason"]

    _setenv(monkeypatch, ENV="production", DATABASE_URL=database_url)
    process = web.build_app()
    app = TestApp(process)
    try:
        eventually(lambda: "configuration" in app.get("/v1/health", status=503).json["reason"])
        reason = app.get("/v1/health", status=503).json["reason"]
        assert reason == "configuration error: RACK_SERVICE_TOKEN is required outside development"
    finally:
        process.shutdown()


def test_the_vault_host_keeps_credentials_out() -> None:
    settings = Settings.from_env(
        {"INFISICAL_API_URL": "https://user:pw@vault.example.com"}, complete=False
    )
    assert web.vault_host(settings) == "vault.example.com"


def test_a_malformed_environment_token_serves_no_reads(
    vault: FakeVault, database_url: str, monkeypatch: pytest.MonkeyPatch, fast_retries: None
) -> None:
    _setenv(
        monkeypatch,
        **vault.env(ENV="production", DATABASE_URL=database_url, RACK_SERVICE_TOKEN="short-token"),
    )
    vault.down = True
    process = web.build_app()
    app = TestApp(process)
    try:
        bearer = {"Authorization": "Bearer short-token"}
        app.get("/v1/scores/latest?tickers=AAPL", headers=bearer, status=401)
    finally:
        process.shutdown()
    with pytest.raises(ConfigError):
        from scorer.config.settings import check_tokens

        check_tokens(
            Settings.from_env(
                {"ENV": "production", "RACK_SERVICE_TOKEN": "short-token"}, complete=False
            )
        )


def test_stopping_before_the_vault_answered_frees_the_interim_app() -> None:
    freed: list[bool] = []
    booting = Booting(
        dict,  # type: ignore[arg-type]
        lambda s: None,  # type: ignore[arg-type, return-value]
        vault_host="vault.example",
        interim=lambda environ, start: [],
        release=lambda: freed.append(True),
    )
    booting.stop()
    booting.stop()
    assert freed == [True]
