"""The read API under any input and any outage: no 500 for bad bytes, extreme dates or
odd ETags; one error shape; 503 with Retry-After when the database is gone; health
degraded past the grace period and back by itself."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from sqlalchemy import Engine
from webtest import TestApp

from jobs.score import score_pending
from scorer.api import create_app
from scorer.api.http import dumps
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.store import store_items
from tests.conftest import TOKEN
from tests.helpers.items import AUTH, NOW
from tests.helpers.items import item as _item
from tests.helpers.outage import outage


@pytest.fixture
def loader(settings: Settings) -> ModelLoader:
    return ModelLoader.loaded(TransformersClassifier(settings.finbert_model, None, threads=1))


@pytest.fixture
def app(settings: Settings, engine: Engine, loader: ModelLoader) -> TestApp:
    return TestApp(create_app(settings, engine=engine, loader=loader))


@pytest.fixture
def scored(sessions, loader: ModelLoader) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        store_items(session, [_item("a", "Apple shares surge", {"AAPL", "MSFT"})], now=NOW)
    assert loader.classifier is not None
    score_pending(sessions, loader.classifier, now=lambda: NOW)


@pytest.mark.parametrize(
    "value",
    ["Bearer \xe9\xe9", "Bearer \xff\xfe\x00", "\xe9", "Bearer " + TOKEN + "\xe9"],
)
def test_a_non_utf8_authorization_header_is_a_401(app: TestApp, value: str) -> None:
    response = app.get(
        "/v1/scores/latest?tickers=AAPL",
        extra_environ={"HTTP_AUTHORIZATION": value},
        status=401,
    )
    assert response.json["error"] == "unauthorized"


def test_an_oversized_authorization_header_is_a_json_431(app: TestApp) -> None:
    response = app.get(
        "/v1/scores/latest?tickers=AAPL",
        headers={"Authorization": "Bearer " + "x" * 5000},
        status=431,
    )
    assert response.json["error"] == "header_too_large"


def test_a_non_utf8_if_none_match_is_an_ordinary_200(app: TestApp, scored: None) -> None:
    response = app.get(
        "/v1/scores/latest?tickers=AAPL",
        headers=AUTH,
        extra_environ={"HTTP_IF_NONE_MATCH": '"\xe9\xff"'},
        status=200,
    )
    assert response.json["data"][0]["ticker"] == "AAPL"


def test_if_none_match_star_lists_and_weak_etags_revalidate(app: TestApp, scored: None) -> None:
    url = "/v1/scores/latest?tickers=AAPL"
    etag = app.get(url, headers=AUTH).headers["ETag"]
    for value in ("*", f'"nope", {etag}', f"W/{etag}", f'{etag},"other"'):
        assert app.get(url, headers={**AUTH, "If-None-Match": value}, status=304).body == b""
    assert app.get(url, headers={**AUTH, "If-None-Match": '"nope", W/"x"'}).status_int == 200


def test_extreme_dates_are_a_200_or_a_400_naming_the_parameter(app: TestApp) -> None:
    base = "/v1/scores/history?ticker=AAPL"
    body = app.get(base + "&to=0001-01-01", headers=AUTH, status=200).json
    assert body["from"] == "0001-01-01T00:00:00Z" and body["data"] == []
    app.get(base + "&from=0001-01-01&to=9999-12-31T23:59:59", headers=AUTH, status=200)
    for name, value in (("from", "9999-12-31T23:59-14:00"), ("to", "0001-01-01T00:00+14:00")):
        body = app.get(f"{base}&{name}={value.replace('+', '%2B')}", headers=AUTH, status=400).json
        assert body["error"] == "bad_request" and f"'{name}' is out of range" in body["message"]


def test_empty_entries_in_a_ticker_list_are_skipped(app: TestApp, scored: None) -> None:
    body = app.get("/v1/scores/latest?tickers=AAPL,,MSFT,", headers=AUTH).json
    assert [d["ticker"] for d in body["data"]] == ["AAPL", "MSFT"] and body["missing"] == []


def test_non_ascii_values_are_echoed_back_readably(app: TestApp) -> None:
    body = app.get("/v1/scores/history?ticker=caf%C3%A9", headers=AUTH, status=400)
    assert "'café'" in body.json["message"]
    assert "café".encode() in body.body  # UTF-8 in the body, not \\u escapes nor mojibake
    bad = app.get("/v1/scores/history?ticker=AAPL&from=%FF%FE", headers=AUTH, status=400)
    assert "'\ufffd\ufffd'" in bad.json["message"]


def test_every_error_has_one_shape_and_one_format(app: TestApp, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    responses = [
        app.get("/v1/scores/latest", headers=AUTH, status=400),
        app.get("/v1/scores/latest?tickers=AAPL", status=401),
        app.get("/v2/nothing", status=404),
        app.post("/v1/scores/latest", status=405),
        app.get("/v1/scores/latest?tickers=" + "A," * 1100, headers=AUTH, status=414),
        app.get("/v1/tickers", headers={**AUTH, "If-None-Match": "x" * 2000}, status=431),
    ]
    from scorer.api import scores

    def bug(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(scores._LatestCache, "get", bug)
    responses.append(
        app.get("/v1/scores/latest?tickers=A", headers=AUTH, status=500, expect_errors=True)
    )
    for response in responses:
        body = response.json
        assert set(body) == {"error", "message"}, response.status
        assert response.content_type == "application/json"
        assert response.text == dumps(body), "one formatting for every error"
    assert responses[-1].json == {"error": "internal_error", "message": "500 Internal Server Error"}


def test_reads_answer_503_with_retry_after_within_2_s_while_the_database_is_down(
    app: TestApp,
    database_url: str,
    engine,
    scored: None,  # type: ignore[no-untyped-def]
) -> None:
    with outage(database_url, engine):
        for url in (
            "/v1/scores/latest?tickers=AAPL",
            "/v1/scores/history?ticker=AAPL",
            "/v1/articles",
            "/v1/tickers",
        ):
            started = time.monotonic()
            response = app.get(url, headers=AUTH, status=503)
            assert time.monotonic() - started < 2.0, url
            assert response.json["error"] == "unavailable"
            assert int(response.headers["Retry-After"]) > 0
            assert "test.db" not in response.text and "postgres" not in response.text
    # Back by itself: the pool reconnects (pre-ping) and the cached latest is current.
    assert app.get("/v1/scores/latest?tickers=AAPL", headers=AUTH).json["missing"] == []


def test_health_turns_degraded_after_the_grace_period_and_recovers_by_itself(
    settings: Settings,
    sessions,
    loader: ModelLoader,
    database_url: str,
    engine,  # type: ignore[no-untyped-def]
) -> None:
    now = [1000.0]
    app = TestApp(
        create_app(
            replace(settings, db_outage_grace=60),
            engine=engine,
            loader=loader,
            clock=lambda: now[0],
        )
    )
    assert app.get("/v1/health").json["database"] == "ok"
    with outage(database_url, engine):
        now[0] += 10  # past the probe's 5 s cache
        started = time.monotonic()
        within = app.get("/v1/health", status=200).json
        assert time.monotonic() - started < 2.0
        assert within["status"] == "ok" and within["database"] == "unreachable"
        now[0] += 61
        degraded = app.get("/v1/health", status=503).json
        assert degraded["status"] == "degraded" and degraded["model_loaded"] is True
        assert degraded["reason"].startswith("database unreachable for ")
    now[0] += 10
    assert app.get("/v1/health", status=200).json["status"] == "ok"


def test_public_health_names_a_local_model_directory_without_its_path(
    app: TestApp, settings: Settings
) -> None:
    body = app.get("/v1/health").json
    assert body["model_id"] == settings.finbert_model.rsplit("/", 1)[-1]
    assert "/" not in body["model_id"]


def test_a_model_path_that_does_not_exist_is_a_clear_health_reason(
    settings: Settings, engine: Engine
) -> None:
    from scorer.scoring.model import load_classifier

    missing = replace(settings, finbert_model="/srv/models/finsent-minilm")
    loader = ModelLoader(lambda: load_classifier(missing))
    loader.stop()  # one attempt, no retry wait
    loader.run()
    body = (
        TestApp(create_app(missing, engine=engine, loader=loader))
        .get("/v1/health", status=503)
        .json
    )
    assert "no model directory named 'finsent-minilm'" in body["reason"]
    assert "Repo id" not in body["reason"] and "/srv" not in body["reason"]


def test_health_reasons_show_no_filesystem_path() -> None:
    from scorer.api.health import public_text

    reason = "ArtifactMismatch: artifact in /app/var/model was built from /tmp/t/tiny@unknown"
    assert public_text(reason) == "ArtifactMismatch: artifact in model was built from tiny@unknown"
    assert public_text("OSError: https://hub.test/x/y gone") == "OSError: https://hub.test/x/y gone"


def test_a_token_never_appears_in_an_error(app: TestApp) -> None:
    for headers in ({"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        assert TOKEN not in app.get("/v1/tickers", headers=headers, status=401).text
