"""The read API under any input and any outage: no 500 for bad bytes, extreme dates or
odd ETags; one error shape; 503 with Retry-After when the database is gone; health
degraded past the grace period and back by itself."""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import Engine
from webtest import TestApp

from jobs.score import score_pending
from scorer.api import create_app
from scorer.api.http import dumps
from scorer.api.openapi import document
from scorer.api.params import spec_of
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


# --- parameters: declared once per route, parsed strictly, documented as parsed ----------


def _malformed(parameter: dict) -> list[str]:  # type: ignore[type-arg]
    """Values a parameter of this schema must refuse: whatever the kind, surrounding
    spaces and control characters; then what a lenient int()/float() would take."""
    schema = parameter["schema"]
    example = parameter.get("example") or "x"
    values = [f" {example}", f"{example} ", "\x01"]
    if schema.get("type") == "integer":
        values += ["1_0", "+5", "-5", "1.0", "\u0661\u0662", str(schema["maximum"] + 1), "ten"]
    elif schema.get("type") == "number":
        values += ["0_1", "nan", "inf", "1e-1", "-0.1", "1.5", "garbage", "0x1", "0.5.1"]
    elif "enum" in schema:
        values += ["not-one-of-them", schema["enum"][0] + "x"]
    elif parameter["name"] in ("from", "to"):
        values += ["yesterday", "2026-13-01", "9999-12-31T23:59-14:00"]
    else:  # tickers, a ticker, a cursor
        values += ["$$", "zzz" if parameter["name"] == "cursor" else "A" * 300]
    return values


def _routes(app: TestApp) -> list[tuple[str, list[dict]]]:  # type: ignore[type-arg]
    """Every route of the app (read from the app, not a list here) with its parameters."""
    return [(route.rule, spec_of(route).openapi()) for route in app.app.routes]


def _base(parameters: list[dict], leave_out: str = "") -> dict[str, str]:  # type: ignore[type-arg]
    """A valid value for each required parameter but ``leave_out``."""
    return {p["name"]: p["example"] for p in parameters if p["required"] and p["name"] != leave_out}


def test_every_parameter_of_every_route_refuses_a_malformed_value_naming_it(
    app: TestApp,
) -> None:
    checked = 0
    for path, parameters in _routes(app):
        for parameter in parameters:
            name = parameter["name"]
            for value in _malformed(parameter):
                query = {**_base(parameters, name), name: value}
                response = app.get(path, query, headers=AUTH, expect_errors=True)
                assert response.status_int == 400, (path, name, value, response.text)
                assert f"'{name}'" in response.json["message"], (path, name, value)
                checked += 1
    assert checked > 100  # the routes' parameters were found


def test_every_route_refuses_an_unknown_parameter_naming_it(app: TestApp) -> None:
    for path, parameters in _routes(app):
        query = {**_base(parameters), "no_such_thing": "1"}
        response = app.get(path, query, headers=AUTH, expect_errors=True)
        assert response.status_int == 400, (path, response.text)
        assert "'no_such_thing'" in response.json["message"], path
    body = app.get("/v1/articles?tickers=AAPL", headers=AUTH, status=400).json
    assert body["message"] == (
        "'tickers' is not a parameter of this route (did you mean 'ticker'?); it takes "
        "ticker, from, to, label, min_relevance, limit, cursor"
    )


def test_every_route_refuses_a_repeated_parameter_naming_it(app: TestApp) -> None:
    for path, parameters in _routes(app):
        for parameter in parameters:
            name = parameter["name"]
            base = urlencode(_base(parameters, name))
            example = quote(parameter.get("example") or "x")
            url = f"{path}?{base}&{name}={example}&{name}={example}"
            response = app.get(url, headers=AUTH, expect_errors=True)
            assert response.status_int == 400, (url, response.text)
            assert f"'{name}' is given 2 times" in response.json["message"], url
    body = app.get("/v1/scores/latest?tickers=AAPL&tickers=MSFT", headers=AUTH, status=400).json
    assert body["message"] == "'tickers' is given 2 times: give it once (a list is comma-separated)"


def test_every_example_in_the_document_is_taken(app: TestApp) -> None:
    """The other side of the malformed values: each documented example is accepted."""
    for path, parameters in _routes(app):
        for parameter in parameters:
            if parameter.get("example") is None or parameter["name"] == "basis":
                continue
            query = {**_base(parameters), parameter["name"]: parameter["example"]}
            response = app.get(path, query, headers=AUTH, expect_errors=True)
            assert response.status_int == 200, (path, query, response.text)


def test_the_documents_parameters_are_each_routes_spec(app: TestApp) -> None:
    paths = document()["paths"]
    for route in app.app.routes:
        operation = paths[route.rule][route.method.lower()]
        documented = [p for p in operation.get("parameters", []) if "$ref" not in p]
        assert documented == spec_of(route).openapi(), route.rule
    assert any(spec_of(route).params for route in app.app.routes)


def test_an_empty_value_counts_as_absent(app: TestApp, scored: None) -> None:
    raw = app.get("/v1/scores/history?ticker=AAPL&limit=&interval=&basis=", headers=AUTH).json
    assert raw["limit"] == 500 and "interval" not in raw
    assert app.get("/v1/articles?ticker=&cursor=", headers=AUTH).json["limit"] == 50


@pytest.mark.parametrize("value", ["0", "1", "0.25", ".5", "1.0", "0.000"])
def test_min_relevance_takes_plain_decimals(app: TestApp, value: str) -> None:
    body = app.get(f"/v1/scores/history?ticker=AAPL&min_relevance={value}", headers=AUTH).json
    assert body["min_relevance"] == float(value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_relevance=0_1", "'min_relevance' must be a decimal number from 0 to 1, got '0_1'"),
        ("min_relevance=%200.1", "'min_relevance' has leading or trailing spaces: ' 0.1'"),
        ("min_relevance=nan", "'min_relevance' must be a decimal number from 0 to 1, got 'nan'"),
        ("min_relevance=1.5", "'min_relevance' must be between 0 and 1"),
        ("limit=-5", "'limit' must be a whole number from 1 to 5000, got '-5'"),
        ("limit=1_0", "'limit' must be a whole number from 1 to 5000, got '1_0'"),
        ("limit=0", "'limit' must be between 1 and 5000"),
        ("cursor=zzz", "'cursor' is not a parameter of this route; it takes ticker, from, to, "
         "limit, min_relevance, interval, basis"),
    ],
)  # fmt: skip
def test_raw_history_refuses_what_a_lenient_parser_would_take(
    app: TestApp, query: str, message: str
) -> None:
    body = app.get(f"/v1/scores/history?ticker=AAPL&{query}", headers=AUTH, status=400).json
    assert body == {"error": "bad_request", "message": message}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("min_relevance=1", "'min_relevance' is not taken with 'interval': drop one of them"),
        ("min_relevance=garbage", "'min_relevance' must be a decimal number from 0 to 1"),
        ("limit=5", "'limit' is not taken with 'interval': drop one of them"),
        ("limit=-5", "'limit' must be a whole number"),
        ("cursor=zzz", "'cursor' is not a parameter of this route"),
    ],
)
def test_bucketed_history_refuses_what_the_roll_ups_cannot_honour(
    app: TestApp, query: str, message: str
) -> None:
    url = f"/v1/scores/history?ticker=AAPL&interval=session&from=2026-11-24&{query}"
    assert app.get(url, headers=AUTH, status=400).json["message"].startswith(message)
    assert app.get(url.rsplit("&", 1)[0], headers=AUTH).json["interval"] == "session"


def test_basis_is_only_taken_with_an_interval(app: TestApp) -> None:
    body = app.get("/v1/scores/history?ticker=AAPL&basis=published", headers=AUTH, status=400)
    assert body.json["message"] == "'basis' is only taken with 'interval'"


def test_latest_tells_an_unwatched_ticker_from_one_with_no_score_yet(
    app: TestApp, scored: None
) -> None:
    # AAPL and MSFT are scored, NVDA is watched but has none, ZZZZ is not watched.
    body = app.get("/v1/scores/latest?tickers=AAPL,NVDA,ZZZZ", headers=AUTH).json
    assert [d["ticker"] for d in body["data"]] == ["AAPL"]
    assert body["missing"] == ["NVDA", "ZZZZ"]  # as before: every ticker without a score
    assert body["unwatched"] == ["ZZZZ"]


def test_a_405_allows_get_and_head_and_head_works(app: TestApp) -> None:
    for path, parameters in _routes(app):
        response = app.post(path, headers=AUTH, status=405)
        assert response.headers["Allow"] == "GET, HEAD", path
        query = urlencode(_base(parameters))
        assert app.head(f"{path}?{query}", headers=AUTH).status_int == 200, path


@pytest.mark.parametrize("gzip", [False, True])
@pytest.mark.parametrize(
    "url", ["/v1/openapi.json", "/v1/scores/latest?tickers=AAPL", "/v1/feeds", "/v1/tickers"]
)
def test_a_304_carries_the_200s_etag_cache_control_and_vary(
    app: TestApp, scored: None, url: str, gzip: bool
) -> None:
    headers = {**AUTH, **({"Accept-Encoding": "gzip"} if gzip else {})}
    first = app.get(url, headers=headers)
    etag = first.headers["ETag"]
    # The document is large enough to be gzipped (its ETag weakened), latest is not.
    assert etag.startswith("W/") == (gzip and url == "/v1/openapi.json")
    again = app.get(url, headers={**headers, "If-None-Match": etag}, status=304)
    for name in ("ETag", "Cache-Control", "Vary"):
        assert again.headers.get(name) == first.headers[name], (url, name)
    assert again.headers["Vary"] == "Accept-Encoding"


def test_an_offset_sent_with_a_bare_plus_is_explained(app: TestApp) -> None:
    url = "/v1/scores/history?ticker=AAPL&from=2026-11-25T10:00:00+05:00"
    message = app.get(url, headers=AUTH, status=400).json["message"]
    assert message.endswith("(send a '+' in a URL as %2B)")
    assert app.get(url.replace("+", "%2B"), headers=AUTH).json["from"] == "2026-11-25T05:00:00Z"
