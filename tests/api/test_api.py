"""The read API, in-process: health contract, auth, validation, caching."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from webtest import TestApp

from jobs.score import score_pending
from scorer.api import create_app
from scorer.api.auth import PUBLIC_ROUTES
from scorer.config.settings import Settings
from scorer.ingest.items import FeedItem
from scorer.ingest.tickers import Tag
from scorer.process.boot import HEALTH_PATH, Booting
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.store import store_items
from tests.conftest import TOKEN
from tests.helpers.items import AUTH, NOW
from tests.helpers.items import item as _item


@pytest.fixture
def loader(settings: Settings) -> ModelLoader:
    classifier = TransformersClassifier(settings.finbert_model, None, threads=1)
    loader = ModelLoader(lambda: classifier)
    loader.run()  # loads at once, in this thread
    return loader


@pytest.fixture
def app(settings: Settings, engine: Engine, loader: ModelLoader) -> TestApp:
    return TestApp(create_app(settings, engine=engine, loader=loader))


def test_health_is_503_warming_up_until_the_model_loads(settings: Settings, engine: Engine) -> None:
    loader = ModelLoader(lambda: (_ for _ in ()).throw(OSError("no such model: x/y")))
    app = TestApp(create_app(settings, engine=engine, loader=loader))

    before = app.get("/v1/health", status=503).json
    assert before == {"status": "warming_up", "model_loaded": False}

    loader.stop()  # one attempt, no retry wait
    loader.run()
    failed = app.get("/v1/health", status=503).json
    assert failed["model_loaded"] is False and failed["reason"] == "OSError: no such model: x/y"


def test_health_is_200_with_the_contract_fields_once_loaded(
    app: TestApp, settings: Settings
) -> None:
    response = app.get("/v1/health", status=200)
    body = response.json
    assert body["status"] == "ok" and body["model_loaded"] is True
    # A local model directory shows by its name only: public health shows no path.
    assert body["model_sha"] == "unknown" and body["model_id"] == Path(settings.finbert_model).name
    assert body["queue_depth"] == {"pending": 0, "rescore_jobs": 0}
    assert isinstance(body["uptime_seconds"], int) and body["version"] == "1.0.0"
    assert response.headers["Cache-Control"] == "no-store"
    # The transformers runtime declares its health: no artifact, and how to build one.
    assert body["artifact"] is None and "run prepare-model" in body["warnings"][0]


def test_health_shows_what_the_runtime_declares(settings: Settings, engine: Engine) -> None:
    class Declaring:
        model_id, revision, labels = "x/y", "r1", ["positive", "negative", "neutral"]

        def predict_proba(self, texts: list[str]) -> object:
            raise AssertionError("health scores nothing")

        def health(self) -> tuple[dict[str, object], list[str]]:
            return {"runtime": {"kind": "declaring"}}, ["a runtime's own warning"]

    loader = ModelLoader.loaded(Declaring())  # type: ignore[arg-type]
    body = TestApp(create_app(settings, engine=engine, loader=loader)).get("/v1/health").json
    assert body["runtime"] == {"kind": "declaring"} and "artifact" not in body
    assert body["warnings"] == ["a runtime's own warning"]


def test_the_model_loader_retries_until_it_succeeds(settings: Settings) -> None:
    attempts: list[int] = []

    def flaky() -> object:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("hub unreachable")
        return TransformersClassifier(settings.finbert_model, None, threads=1)

    loader = ModelLoader(flaky, first_backoff=0.01)  # type: ignore[arg-type]
    loader.start()
    loader.wait(timeout=30)
    assert loader.ready and loader.attempts == 3 and loader.reason is None


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}]
)
def test_scores_need_the_bearer_token(app: TestApp, headers: dict[str, str]) -> None:
    response = app.get("/v1/scores/latest?tickers=AAPL", headers=headers, status=401)
    assert response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


def _path(rule: str) -> str:
    """A route's rule with each wildcard filled with a plausible value."""
    return re.sub(r"<\w*(:(\w+))?[^>]*>", lambda m: "1" if m[2] == "int" else "AAPL", rule)


UNAUTHORIZED = {"error": "unauthorized", "message": "a valid bearer token is required"}


def test_every_route_but_the_public_ones_needs_the_bearer_token(app: TestApp) -> None:
    routes = app.app.routes
    assert {route.rule for route in routes} >= PUBLIC_ROUTES, "a public route the app lacks"
    # Booting compares the public routes with PATH_INFO: they must be literal paths.
    assert not any("<" in rule for rule in PUBLIC_ROUTES)
    for route in routes:
        path, public = _path(route.rule), route.rule in PUBLIC_ROUTES
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
            response = app.request(path, method=route.method, headers=headers, expect_errors=True)
            if public:
                assert response.status_int != 401, (route.rule, headers)
                continue
            assert response.status_int == 401, (route.rule, headers)
            assert response.json == UNAUTHORIZED
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="reasonator"'
        answer = app.request(path, method=route.method, headers=AUTH, expect_errors=True)
        assert answer.status_int != 401, route.rule


def test_while_booting_health_is_503_openapi_200_and_every_other_route_401(
    app: TestApp,
) -> None:
    booting = TestApp(Booting(dict, lambda settings: app.app))  # not started: never ready
    assert HEALTH_PATH in PUBLIC_ROUTES
    for route in app.app.routes:
        path = _path(route.rule)
        response = booting.request(path, method=route.method, headers=AUTH, expect_errors=True)
        if route.rule in PUBLIC_ROUTES:
            assert response.status_int == (503 if route.rule == HEALTH_PATH else 200), route.rule
        else:
            assert response.status_int == 401, route.rule
            assert response.json == UNAUTHORIZED
            assert response.headers["WWW-Authenticate"] == 'Bearer realm="reasonator"'
    assert booting.get(HEALTH_PATH, status=503).json["status"] == "warming_up"
    served = booting.get("/v1/openapi.json", status=200)
    assert served.json == app.get("/v1/openapi.json").json, "the same document as once booted"
    assert served.headers["ETag"] == app.get("/v1/openapi.json").headers["ETag"]


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("/v1/scores/latest", "tickers"),
        ("/v1/scores/latest?tickers=AAPL,bad$", "tickers"),
        ("/v1/scores/latest?tickers=" + ",".join(f"T{i}" for i in range(51)), "tickers"),
        ("/v1/scores/history", "ticker"),
        ("/v1/scores/history?ticker=AAPL&from=yesterday", "from"),
        ("/v1/scores/history?ticker=AAPL&to=2026-13-01", "to"),
        ("/v1/scores/history?ticker=AAPL&from=2026-11-02&to=2026-11-01", "from"),
        ("/v1/scores/history?ticker=AAPL&limit=5001", "limit"),
        ("/v1/scores/history?ticker=AAPL&limit=ten", "limit"),
    ],
)
def test_a_bad_parameter_is_a_400_that_names_it(app: TestApp, url: str, names: str) -> None:
    body = app.get(url, headers=AUTH, status=400).json
    assert body["error"] == "bad_request" and f"'{names}'" in body["message"]


def test_unknown_paths_are_json_404s(app: TestApp) -> None:
    assert app.get("/nope", status=404).json["error"] == "not_found"


def test_latest_is_the_newest_news_and_revalidates_with_an_etag(
    app: TestApp,
    sessions,
    loader: ModelLoader,  # type: ignore[no-untyped-def]
) -> None:
    older = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    with sessions.begin() as session:
        store_items(
            session,
            [
                _item("new", "Apple shares surge", {"AAPL"}),
                _item("old", "Apple stock falls", {"AAPL"}, older),
            ],
            now=NOW,
        )
    assert loader.classifier is not None
    score_pending(sessions, loader.classifier, now=lambda: NOW)

    first = app.get("/v1/scores/latest?tickers=aapl", headers=AUTH)
    assert [d["article"]["headline"] for d in first.json["data"]] == ["Apple shares surge"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]

    again = app.get(
        "/v1/scores/latest?tickers=AAPL", headers={**AUTH, "If-None-Match": etag}, status=304
    )
    assert again.body == b""


def test_history_limit_truncates_and_says_so(app: TestApp, sessions, loader) -> None:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        store_items(
            session, [_item(f"k{i}", f"Apple news {i}", {"AAPL"}) for i in range(5)], now=NOW
        )
    score_pending(sessions, loader.classifier, now=lambda: NOW)

    body = app.get("/v1/scores/history?ticker=AAPL&from=2026-11-25&limit=3", headers=AUTH).json
    assert len(body["data"]) == 3 and body["truncated"] is True
    assert body["from"] == "2026-11-25T00:00:00Z"


def test_a_missing_database_is_a_json_503_that_leaks_nothing(
    settings: Settings,
    loader: ModelLoader,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    from scorer.storage.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/secret-name.db")
    app = TestApp(create_app(settings, engine=broken, loader=loader))

    response = app.get("/v1/scores/latest?tickers=AAPL", headers=AUTH, status=503)
    assert response.json == {
        "error": "unavailable",
        "message": "the database is unreachable; retry later",
    }
    assert "secret-name" not in response.text
    for path in ("/v1/scores/history?ticker=AAPL", "/v1/scores/history?ticker=AAPL&interval=1h"):
        assert app.get(path, headers=AUTH, status=503).json["error"] == "unavailable"
    # Health still answers (queue depth unknown) rather than failing with the database.
    assert app.get("/v1/health").json["queue_depth"] == {"pending": None, "rescore_jobs": None}


def test_latest_shows_a_new_score_as_soon_as_it_is_stored(
    app: TestApp,
    sessions,
    loader: ModelLoader,  # type: ignore[no-untyped-def]
) -> None:
    with sessions.begin() as session:
        store_items(session, [_item("first", "Apple stock falls", {"AAPL"})], now=NOW)
    score_pending(sessions, loader.classifier, now=lambda: NOW)
    before = app.get("/v1/scores/latest?tickers=AAPL,MSFT", headers=AUTH).json
    assert before["data"][0]["article"]["headline"] == "Apple stock falls"

    later = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    with sessions.begin() as session:
        store_items(
            session, [_item("second", "Apple shares surge", {"AAPL", "MSFT"}, later)], now=later
        )
    score_pending(sessions, loader.classifier, now=lambda: later)

    after = app.get("/v1/scores/latest?tickers=AAPL,MSFT", headers=AUTH).json
    assert [d["article"]["headline"] for d in after["data"]] == ["Apple shares surge"] * 2
    assert after["missing"] == []


# --- relevance ---------------------------------------------------------------------------------


def _store_with_relevance(sessions, loader) -> None:  # type: ignore[no-untyped-def]
    older = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)
    central = FeedItem(
        "central", "Apple raises its dividend", "", "https://x.test/c", older, "Wire",
        (Tag("AAPL", 1.0, "name"),),
    )  # fmt: skip
    passing = FeedItem(
        "passing", "Five tech stocks to watch", "Apple among them", "https://x.test/p", NOW,
        "Wire", (Tag("AAPL", 0.268, "name"), Tag("MSFT", 0.268, "name")),
    )  # fmt: skip
    with sessions.begin() as session:
        store_items(session, [central, passing], now=NOW)
    score_pending(sessions, loader.classifier, now=lambda: NOW)


def test_items_show_relevance_and_why_they_were_tagged(app: TestApp, sessions, loader) -> None:  # type: ignore[no-untyped-def]
    _store_with_relevance(sessions, loader)

    latest = app.get("/v1/scores/latest?tickers=AAPL", headers=AUTH).json["data"]
    assert [(d["relevance"], d["tagged_by"]) for d in latest] == [(0.268, "name")]
    history = app.get("/v1/scores/history?ticker=AAPL&from=2026-11-01", headers=AUTH).json
    found = {(d["article"]["headline"], d["relevance"], d["tagged_by"]) for d in history["data"]}
    assert found == {
        ("Apple raises its dividend", 1.0, "name"),
        ("Five tech stocks to watch", 0.268, "name"),
    }


def test_min_relevance_filters_latest_and_history(app: TestApp, sessions, loader) -> None:  # type: ignore[no-untyped-def]
    _store_with_relevance(sessions, loader)

    every = app.get("/v1/scores/latest?tickers=AAPL,MSFT", headers=AUTH).json
    assert [d["article"]["headline"] for d in every["data"]] == ["Five tech stocks to watch"] * 2
    # Same stamp, other filter: the cache keys on min_relevance too.
    central = app.get("/v1/scores/latest?tickers=AAPL,MSFT&min_relevance=0.5", headers=AUTH).json
    assert [d["article"]["headline"] for d in central["data"]] == ["Apple raises its dividend"]
    assert central["missing"] == ["MSFT"]
    history = app.get(
        "/v1/scores/history?ticker=AAPL&from=2026-11-01&min_relevance=0.5", headers=AUTH
    ).json
    assert [d["relevance"] for d in history["data"]] == [1.0] and history["min_relevance"] == 0.5


@pytest.mark.parametrize("raw", ["1.5", "-0.1", "high", "nan"])
def test_a_bad_min_relevance_is_a_400_naming_it(app: TestApp, raw: str) -> None:
    for path in ("/v1/scores/latest?tickers=AAPL", "/v1/scores/history?ticker=AAPL"):
        response = app.get(f"{path}&min_relevance={raw}", headers=AUTH, status=400)
        assert "'min_relevance'" in response.json["message"]
