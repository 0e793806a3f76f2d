"""The OpenAPI document is the contract: it lists exactly the routes of the app, it is valid
OpenAPI 3.1, real responses of every endpoint match it, and a schema-driven fuzz of
parameters and headers (hypothesis) finds no 5xx and no response outside it."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import validate as validate_openapi
from sqlalchemy import Engine
from webtest import TestApp

from jobs.score import score_pending
from scorer.api import create_app
from scorer.api.auth import PUBLIC_ROUTES
from scorer.api.openapi import document
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.db import meta_set
from scorer.storage.store import PRUNED_BEFORE, store_items
from tests.conftest import TOKEN
from tests.helpers.items import AUTH, NOW
from tests.helpers.items import item as _item
from tests.helpers.outage import outage

DOC = document()


@pytest.fixture
def loader(settings: Settings) -> ModelLoader:
    return ModelLoader.loaded(TransformersClassifier(settings.finbert_model, None, threads=1))


@pytest.fixture
def app(settings: Settings, engine: Engine, sessions, loader: ModelLoader) -> TestApp:  # type: ignore[no-untyped-def]
    with sessions.begin() as session:
        store_items(
            session,
            [_item(f"k{i}", f"Apple news {i}", {"AAPL", "MSFT"}) for i in range(3)],
            now=NOW,
        )
    assert loader.classifier is not None
    score_pending(sessions, loader.classifier, now=lambda: NOW)
    return TestApp(create_app(settings, engine=engine, loader=loader))


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = DOC["components"][kind][name]
    return node


def check(path: str, method: str, response: Any) -> None:
    """The response's status is documented for this operation and its body matches."""
    # HEAD is GET without a body; other methods get a 405, documented on GET.
    item = DOC["paths"][path]
    operation = item.get(method.lower(), item["get"])
    documented = operation["responses"].get(str(response.status_int))
    assert documented is not None, f"{method} {path}: {response.status} is not documented"
    spec = _resolve(documented)
    if "content" not in spec or method == "HEAD":
        assert response.body == b"", f"{method} {path}: {response.status} has a body"
        return
    if "application/json" not in spec["content"]:  # the console's files
        assert response.content_type in spec["content"], f"{method} {path}: {response.content_type}"
        return
    schema = {**spec["content"]["application/json"]["schema"], "components": DOC["components"]}
    Draft202012Validator(schema, format_checker=FormatChecker()).validate(response.json)


def test_the_document_is_valid_openapi_3_1() -> None:
    validate_openapi(DOC)
    assert DOC["openapi"].startswith("3.1")


def _operation(method: str, rule: str) -> tuple[str, str]:
    """A Bottle route as an OpenAPI operation: ``<name>`` or ``<name:filter>`` -> ``{name}``."""
    return method.lower(), re.sub(r"<(\w+)[^>]*>", r"{\1}", rule)


def test_the_document_lists_every_route_of_the_app_and_nothing_else(app: TestApp) -> None:
    routes = {_operation(route.method, route.rule) for route in app.app.routes}
    documented = {(m, p) for p, item in DOC["paths"].items() for m in item}
    missing = sorted(f"{m.upper()} {p}" for m, p in routes - documented)
    assert not missing, f"document these routes in scorer/api/openapi.py: {missing}"
    extra = sorted(f"{m.upper()} {p}" for m, p in documented - routes)
    assert not extra, f"the app has no such routes; drop them from the document: {extra}"


def test_the_document_marks_exactly_the_public_routes_public(app: TestApp) -> None:
    for route in app.app.routes:
        method, path = _operation(route.method, route.rule)
        security = DOC["paths"][path][method]["security"]
        assert security == ([] if route.rule in PUBLIC_ROUTES else [{"bearer": []}]), path


def test_the_document_is_served_publicly(app: TestApp) -> None:
    response = app.get("/v1/openapi.json")
    assert response.json == DOC
    check("/v1/openapi.json", "GET", response)


def test_real_responses_of_every_endpoint_match_the_document(
    app: TestApp,
    database_url: str,
    engine,  # type: ignore[no-untyped-def]
    sessions,  # type: ignore[no-untyped-def]
) -> None:
    cursor = app.get("/v1/articles?limit=1", headers=AUTH).json["next_cursor"]
    # Queries for the routes that take parameters (the first one valid); any other
    # route of the app is read without one.
    queries = {
        "/v1/scores/latest": ["tickers=AAPL,MSFT,NVDA", "", "tickers=$$"],
        "/v1/scores/history": ["ticker=AAPL&from=2026-11-01", "ticker=AAPL&limit=1", "limit=x"],
        "/v1/articles": ["", "ticker=AAPL&label=neutral", f"limit=1&cursor={cursor}", "cursor=z"],
        "/v1/scores/history/articles": [
            "ticker=AAPL&interval=session&bucket=2026-11-25T14:30:00Z",
            "ticker=AAPL&interval=15m&bucket=2026-11-25T19:00:00Z&basis=published&limit=1",
            "ticker=AAPL&interval=15m&bucket=2026-11-25T19:05:00Z",
        ],
    }
    rules = {route.rule for route in app.app.routes}
    assert set(queries) <= rules, "queries for a route the app does not have"
    reads = {rule: queries.get(rule, [""]) for rule in sorted(rules - PUBLIC_ROUTES)}
    seen: set[tuple[str, int]] = set()

    def get(path: str, query: str = "", **kw: Any) -> None:
        response = app.get(f"{path}?{query}", expect_errors=True, **kw)
        check(path, "GET", response)
        seen.add((path, response.status_int))

    for path, examples in reads.items():
        for query in examples:
            get(path, query, headers=AUTH)
        etag = app.get(f"{path}?{examples[0]}", headers=AUTH).headers.get("ETag")
        if etag is not None:  # /v1/feeds sends none
            get(path, examples[0], headers={**AUTH, "If-None-Match": etag})
        get(path, examples[0])
        get(path, "x=" + "a" * 3000, headers=AUTH)
        get(path, examples[0], headers={**AUTH, "If-None-Match": "x" * 2000})
        check(path, "POST", app.post(path, expect_errors=True))
        check(path, "HEAD", app.head(f"{path}?{examples[0]}", headers=AUTH))
    for path in sorted(PUBLIC_ROUTES):
        get(path)
    with outage(database_url, engine):
        for path, examples in reads.items():
            get(path, examples[0], headers=AUTH)
    # Retention pruned the bucket's detail: a 410, as documented.
    with sessions.begin() as session:
        meta_set(session, PRUNED_BEFORE, "2026-12-01T00:00:00+00:00")
    get("/v1/scores/history/articles", reads["/v1/scores/history/articles"][0], headers=AUTH)
    statuses = {status for _, status in seen}
    assert {200, 304, 400, 401, 410, 414, 431, 503} <= statuses


_LATIN1 = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "AAPL",
            "aapl,msft",
            "AAPL,,MSFT",
            "2026-11-25",
            "0001-01-01",
            "9999-12-31T23:59-14:00",
            "positive",
            "1",
            "0",
            "5000",
        ]
    ),
    st.text(max_size=30),
    st.from_regex(r"[A-Z]{1,5}(,[A-Z]{0,5}){0,3}", fullmatch=True),
    st.integers(-(10**12), 10**12).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
)
# Mostly valid tokens and tickers, so the fuzz gets past auth and reaches each parameter.
_AUTH = st.sampled_from(
    [f"Bearer {TOKEN}"] * 6 + ["", "Bearer wrong", "Bearer \xe9\xe9", f"Basic {TOKEN}", "Bearer"]
)
_INSTANTS = st.builds(
    lambda d, offset: d.isoformat() + offset,
    # Anywhere, and near both ends of the range, where an offset overflows.
    st.one_of(
        st.datetimes(),
        st.datetimes(max_value=datetime(1, 1, 2)),
        st.datetimes(min_value=datetime(9999, 12, 30)),
    ),
    st.sampled_from(["", "Z", "+14:00", "-14:00", "+05:30"]),
)
_TICKERS = st.lists(st.sampled_from(["AAPL", "msft", "NVDA", "BRK.B", "", " TSLA"]), max_size=6)
# A history bucket: a real bucket start now and then (the open and quarters after it).
_BUCKETS = st.one_of(
    _INSTANTS,
    st.builds(
        lambda day, quarter: (
            f"2026-11-{day:02d}T{14 + (30 + 15 * quarter) // 60}:{(30 + 15 * quarter) % 60:02d}:00Z"
        ),
        st.integers(16, 30),
        st.integers(0, 25),
    ),
)
_BY_NAME = {
    "from": _INSTANTS,
    "to": _INSTANTS,
    "tickers": _TICKERS.map(",".join),
    "bucket": _BUCKETS,
}


def valid(parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    """Values the parameter's schema allows (boundaries included), as query text."""
    if parameter["name"] in _BY_NAME:
        return _BY_NAME[parameter["name"]]
    schema = _resolve(parameter["schema"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("type") == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum")).map(str)
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True)
    return st.text(max_size=20)


_INM = st.one_of(st.none(), st.sampled_from(["*", '"a", W/"b"', "W/*"]), _LATIN1)
_OPERATIONS = [(p, op) for p, item in DOC["paths"].items() for op in item.values()]


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    path, operation = draw(st.sampled_from(_OPERATIONS))
    parameters = [_resolve(p) for p in operation.get("parameters", [])]
    query = []
    for parameter in [p for p in parameters if p["in"] == "query"]:
        # Mostly what the schema allows, so requests get past the first check; now and
        # then anything at all.
        ok = valid(parameter)
        value = draw(st.one_of(st.none(), ok, ok, ok, _VALUES))
        if value is not None:
            query.append(f"{parameter['name']}={quote(value, safe='')}")
    if draw(st.booleans()):
        query.append(draw(st.sampled_from(["%FF", "from=%C3%28", "ticker=%00", "&&=&"])))
    environ = {"HTTP_AUTHORIZATION": draw(_AUTH)}
    inm = draw(_INM)
    if inm is not None:
        environ["HTTP_IF_NONE_MATCH"] = inm
    return path, "&".join(query), environ


@hsettings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # the same examples in every run: CI never flakes on a new one
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests(), method=st.sampled_from(["GET", "GET", "GET", "HEAD", "DELETE"]))
def test_a_schema_driven_fuzz_finds_no_5xx_and_nothing_outside_the_document(
    app: TestApp, request: tuple[str, str, dict[str, str]], method: str
) -> None:
    path, query, environ = request
    send = getattr(app, method.lower())
    response = send(f"{path}?{query}", extra_environ=environ, expect_errors=True)
    assert response.status_int < 500, (path, query, environ, response.text)
    check(path, method, response)
