"""jobs.ingest against a local server that misbehaves, on SQLite and Postgres: feed
state per feed key, backoff, bounded concurrent fetching, syndicated copies, feed
health, parse warnings and run-once's exit status."""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from webtest import TestApp

from jobs.ingest import backoff, ingest
from scorer.ingest.fetch import (
    FetchJob,
    FetchPolicy,
    RateLimit,
    RateLimits,
    fetch_all,
    make_http_session,
)
from scorer.ingest.sources import FeedSpec
from scorer.ingest.tagging import Tagger
from scorer.ingest.tickers import default_directory
from scorer.storage.tables import Article, ArticleCopy, ArticleTicker, Feed
from tests.conftest import TOKEN
from tests.helpers.feed_server import (
    HTML,
    StubServer,
    hang,
    not_modified,
    redirect_loop,
    reply,
    slow,
    trickle,
)

NOW = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
WATCH = Tagger(
    frozenset({"AAPL", "MSFT", "TSLA", "NVDA", "XOM", "JAX", "TGT"}), default_directory()
)
FAST = FetchPolicy(timeout=1.0, deadline=2.0)
RSS = {"Content-Type": "application/rss+xml"}


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = make_http_session("reasonator-tests/1.0")
    yield session
    session.close()


def _feed(sessions: sessionmaker[Session], spec: FeedSpec) -> Feed:
    with sessions() as session:
        return session.scalars(select(Feed).where(Feed.key == spec.key)).one()


def _count(sessions: sessionmaker[Session], model: type) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_one_url_market_wide_and_per_ticker_keeps_two_etags(
    sessions: sessionmaker[Session], http: requests.Session, feed_server: StubServer
) -> None:
    url = feed_server.url("/wire.xml")
    feed_server.routes["/wire.xml"] = not_modified()
    market, aapl = FeedSpec(url), FeedSpec(url, ticker="AAPL")

    first = ingest(sessions, http, [market], WATCH, now=NOW, policy=FAST)
    second = ingest(sessions, http, [market, aapl], WATCH, now=NOW, policy=FAST)

    assert first.fetched == 1 and second.not_modified == 1 and second.fetched == 1
    asked = [headers.get("If-None-Match") for _, headers in feed_server.seen]
    assert asked.count('"v1"') == 1  # only the market-wide feed revalidated
    with sessions() as session:
        aapl_items = session.scalar(
            select(func.count())
            .select_from(ArticleTicker)
            .where(ArticleTicker.ticker == "AAPL", ArticleTicker.tagged_by == "feed")
        )
    assert aapl_items and aapl_items >= 3  # every item of the per-ticker copy is AAPL's
    assert _feed(sessions, market).id != _feed(sessions, aapl).id


def test_a_failing_feed_backs_off_exponentially_with_a_cap(
    sessions: sessionmaker[Session], http: requests.Session, feed_server: StubServer
) -> None:
    feed_server.routes["/down.xml"] = reply(b"oops", status=500)
    spec = FeedSpec(feed_server.url("/down.xml"), name="Down wire")

    first = ingest(sessions, http, [spec], WATCH, now=NOW, policy=FAST)
    state = _feed(sessions, spec)
    assert first.errors == [f"Down wire: HTTP 500 from {spec.url}"]
    assert _feed(sessions, spec).last_error == first.errors[0]
    assert state.consecutive_failures == 1 and state.next_attempt_at == NOW + timedelta(minutes=1)

    hits = len(feed_server.seen)
    early = ingest(sessions, http, [spec], WATCH, now=NOW + timedelta(seconds=30), policy=FAST)
    assert early.skipped == 1 and early.errors == [] and len(feed_server.seen) == hits

    later = NOW + timedelta(minutes=2)
    ingest(sessions, http, [spec], WATCH, now=later, policy=FAST)
    state = _feed(sessions, spec)
    assert state.consecutive_failures == 2 and state.next_attempt_at == later + timedelta(minutes=2)
    assert [backoff(n) for n in (0, 1, 3, 7, 30)] == [
        timedelta(0),
        timedelta(minutes=1),
        timedelta(minutes=4),
        timedelta(hours=1),
        timedelta(hours=1),
    ]


def test_a_success_resets_the_failures(
    sessions: sessionmaker[Session], http: requests.Session, feed_server: StubServer
) -> None:
    feed_server.routes["/flaky.xml"] = reply(b"oops", status=500)
    spec = FeedSpec(feed_server.url("/flaky.xml"))
    ingest(sessions, http, [spec], WATCH, now=NOW, policy=FAST)
    feed_server.serve_file("/flaky.xml", "prnewswire_style.xml")

    ingest(sessions, http, [spec], WATCH, now=NOW + timedelta(minutes=5), policy=FAST)

    state = _feed(sessions, spec)
    assert (state.consecutive_failures, state.next_attempt_at, state.last_error) == (0, None, None)
    assert state.items_seen == 4


def test_a_cycle_over_50_feeds_with_misbehaving_servers_ends_in_time(
    sessions: sessionmaker[Session], http: requests.Session, feed_server: StubServer
) -> None:
    bad = {
        "/hang.xml": hang(),
        "/trickle.xml": trickle(every=0.3),
        "/slow.xml": slow(10, b"<rss/>"),
        "/huge.xml": reply(b"<rss>" + b" " * 6_000_000),
        "/500.xml": reply(b"", status=500),
        "/loop.xml": redirect_loop("/loop.xml"),
        "/html.xml": reply(HTML, headers={"Content-Type": "text/html"}),
        "/304.xml": not_modified(),
    }
    feed_server.routes.update(bad)
    specs = [FeedSpec(feed_server.url(path)) for path in bad]
    for i in range(42):
        specs.append(FeedSpec(feed_server.serve_file(f"/ok{i}.xml", "globenewswire_style.xml")))
    # 127.0.0.1 is one host: let the pool use its 4 workers on it.
    policy = FetchPolicy(timeout=1.0, deadline=2.0, workers=4, per_host=4)

    started = time.monotonic()
    result = ingest(sessions, http, specs, WATCH, now=NOW, policy=policy)
    took = time.monotonic() - started

    assert took < 20, f"the cycle took {took:.1f} s"
    assert result.feeds == 50 and result.fetched == 43  # 42 good ones and the 304 route's first
    errors = "\n".join(result.errors)
    for expected in (
        f"127.0.0.1:{feed_server.server_port}/hang.xml: timed out fetching",  # read timeout
        "no complete answer within 2 s",  # trickle (overall deadline)
        "body over 5000000 bytes",
        "HTTP 500",
        "too many redirects",
        "text/html is not an XML media type",  # HTML
    ):
        assert expected in errors
    assert len(result.errors) == 7  # hang, trickle, slow, huge, 500, loop, html


def test_fetching_keeps_to_the_bounds(feed_server: StubServer, http: requests.Session) -> None:
    active, peak = [0], [0]

    def counted(handler) -> None:  # type: ignore[no-untyped-def]
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        feed_server.release.wait(timeout=0.2)
        active[0] -= 1
        reply(b"<rss version='2.0'><channel><title>t</title></channel></rss>")(handler)

    feed_server.routes["/c.xml"] = counted
    jobs = [FetchJob(FeedSpec(feed_server.url(f"/c.xml?n={i}"))) for i in range(8)]

    outcomes = list(fetch_all(http, jobs, FetchPolicy(timeout=2, deadline=5, per_host=2)))

    assert len(outcomes) == 8 and peak[0] == 2  # one host: at most 2 at once


def test_the_edgar_rate_limit_spaces_requests() -> None:
    limit = RateLimit(10)
    started = time.monotonic()
    for _ in range(6):
        limit.wait()
    assert time.monotonic() - started >= 0.45  # 6 starts at 10/s span 0.5 s


def _timed(feed_server: StubServer, path: str) -> list[float]:
    """Serve an empty feed at ``path``; return the list its request times go to."""
    times: list[float] = []

    def route(handler) -> None:  # type: ignore[no-untyped-def]
        times.append(time.monotonic())
        reply(b"<rss version='2.0'><channel><title>t</title></channel></rss>")(handler)

    feed_server.routes[path] = route
    return times


def test_the_rate_limits_are_their_owners_and_span_its_cycles(
    feed_server: StubServer, http: requests.Session
) -> None:
    times = _timed(feed_server, "/edgar.xml")
    edgar = [
        FetchJob(FeedSpec(feed_server.url(f"/edgar.xml?n={i}"), kind="edgar")) for i in range(3)
    ]
    policy = FetchPolicy(timeout=2, deadline=5, per_host=3, workers=3)

    owned = RateLimits()  # what the service keeps for its whole life
    for _ in range(2):  # two cycles
        assert len(list(fetch_all(http, edgar, policy, owned))) == 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.08  # 10/s within a cycle and across the two


def test_rate_limits_are_per_owner_and_per_kind() -> None:
    from scorer.ingest.kinds import EDGAR, KINDS

    mine, theirs = RateLimits(), RateLimits()
    mine.wait(EDGAR)
    started = time.monotonic()
    theirs.wait(EDGAR)  # another owner's first EDGAR request: no wait
    mine.wait(KINDS["wire"])  # a kind without a rate: no wait
    assert time.monotonic() - started < 0.09
    mine.wait(EDGAR)  # my second EDGAR request waits for its slot
    assert time.monotonic() - started >= 0.09


def test_only_a_kind_that_asks_for_a_contact_gets_it_as_user_agent(
    feed_server: StubServer, http: requests.Session
) -> None:
    _timed(feed_server, "/edgar.xml")
    _timed(feed_server, "/wire.xml")
    jobs = [
        FetchJob(FeedSpec(feed_server.url("/edgar.xml"), kind="edgar")),
        FetchJob(FeedSpec(feed_server.url("/wire.xml"), kind="wire")),
    ]
    policy = FetchPolicy(timeout=2, deadline=5, user_agents={"edgar": "Acme ops@acme.example"})

    list(fetch_all(http, jobs, policy))

    agents = {path: headers["User-Agent"] for path, headers in feed_server.seen}
    assert agents == {"/edgar.xml": "Acme ops@acme.example", "/wire.xml": "reasonator-tests/1.0"}


def test_one_story_on_three_wires_is_stored_once_with_every_ticker(
    sessions: sessionmaker[Session], http: requests.Session, feed_server: StubServer
) -> None:
    title = "Jaxon Logistics to Acquire Harbor Freight Lines for $1.2 Billion"

    def wire(name: str, path: str, extra: str) -> FeedSpec:
        body = (
            f"<rss version='2.0'><channel><title>{name}</title><item><title>{title}</title>"
            f"<link>https://{path}.test/jaxon</link><description>{extra}</description>"
            "<pubDate>Tue, 24 Nov 2026 13:30:00 -0500</pubDate></item></channel></rss>"
        )
        feed_server.routes[f"/{path}.xml"] = reply(body.encode())
        return FeedSpec(feed_server.url(f"/{path}.xml"), name=name)

    specs = [
        wire("Wire One", "one", "Jaxon Logistics Inc. (NYSE: JAX) announced"),
        wire("Wire Two", "two", "The deal follows talks with Tesla ($TSLA)."),
        wire("Wire Three", "three", "Jaxon (NYSE: JAX) said."),
    ]
    first = ingest(sessions, http, specs, WATCH, now=NOW, policy=FAST)
    again = ingest(sessions, http, specs, WATCH, now=NOW + timedelta(hours=1), policy=FAST)

    assert (first.new, first.copies, again.new, again.copies) == (1, 2, 0, 0)
    with sessions() as session:
        article = session.scalars(select(Article)).one()
        copies = session.scalars(select(ArticleCopy).order_by(ArticleCopy.id)).all()
        tickers = {t.ticker for t in article.tickers}
    assert tickers == {"JAX", "TSLA"}  # merged from every copy
    assert article.url is not None
    assert len(copies) == 2 and article.url not in {c.url for c in copies}
    assert {c.source for c in copies} | {article.source} == {"Wire One", "Wire Two", "Wire Three"}


def test_the_same_title_from_one_source_or_days_apart_is_another_story(
    sessions: sessionmaker[Session], http: requests.Session, feed_server: StubServer
) -> None:
    def item(link: str, day: int) -> str:
        return (
            "<item><title>Exxon Mobil Declares Fourth Quarter Dividend Today</title>"
            f"<link>https://x.test/{link}</link><description>(NYSE: XOM)</description>"
            f"<pubDate>{day} Nov 2026 13:30:00 GMT</pubDate></item>"
        )

    items = item("a", 20) + item("b", 20)
    body = f"<rss version='2.0'><channel><title>W</title>{items}</channel></rss>"
    feed_server.routes["/same.xml"] = reply(body.encode())
    other = f"<rss version='2.0'><channel><title>V</title>{item('c', 24)}</channel></rss>"
    feed_server.routes["/later.xml"] = reply(other.encode())
    specs = [FeedSpec(feed_server.url("/same.xml")), FeedSpec(feed_server.url("/later.xml"))]

    result = ingest(sessions, http, specs, WATCH, now=NOW, policy=FAST)

    assert (result.new, result.copies) == (3, 0)


def test_errors_of_twelve_feeds_on_one_host_say_which_feed_failed(
    sessions: sessionmaker[Session],
    http: requests.Session,
    feed_server: StubServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = reply(b"<rss version='2.0'><channel><title>cut off", headers=RSS)
    specs = []
    for i in range(12):
        feed_server.routes[f"/f{i}.xml"] = broken
        name = "Wire seven" if i == 7 else ""  # as a catalogue entry would be named
        specs.append(FeedSpec(feed_server.url(f"/f{i}.xml?token=SECRET"), name=name))
    policy = FetchPolicy(timeout=1.0, deadline=2.0, workers=4, per_host=4)

    with caplog.at_level(logging.WARNING, logger="jobs.ingest"):
        result = ingest(sessions, http, specs, WATCH, now=NOW, policy=policy)

    port = feed_server.server_port
    named = sorted(error.split(": not a well-formed feed")[0] for error in result.errors)
    assert named == sorted(
        ["Wire seven"] + [f"127.0.0.1:{port}/f{i}.xml" for i in range(12) if i != 7]
    )
    logged = [r.getMessage() for r in caplog.records if "not a well-formed" in r.getMessage()]
    assert sorted(logged) == sorted(f"feed skipped: {error}" for error in result.errors)
    stored = {_feed(sessions, spec).last_error for spec in specs}
    assert stored == set(result.errors)
    assert "SECRET" not in "".join(result.errors + logged)


def test_a_parse_warning_names_the_feed(
    sessions: sessionmaker[Session],
    http: requests.Session,
    feed_server: StubServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = feed_server.serve_file("/cdata.xml", "feedparser_illformed_incomplete_cdata.xml")
    with caplog.at_level(logging.WARNING, logger="jobs.ingest"):
        ingest(sessions, http, [FeedSpec(url, name="Broken wire")], WATCH, now=NOW, policy=FAST)
    assert any(
        "'Broken wire'" in r.getMessage() and "parsed despite a problem" in r.getMessage()
        for r in caplog.records
    )


def test_the_feeds_endpoint_lists_health_without_query_strings(
    settings,  # type: ignore[no-untyped-def]
    engine: Engine,
    sessions: sessionmaker[Session],
    http: requests.Session,
    feed_server: StubServer,
) -> None:
    from dataclasses import replace

    from scorer.api import create_app
    from scorer.scoring.model import ModelLoader

    good = FeedSpec(feed_server.serve_file("/p.xml", "prnewswire_style.xml") + "?key=SECRET")
    feed_server.routes["/gone.xml"] = reply(b"", status=500)
    gone = FeedSpec(feed_server.url("/gone.xml"), name="Gone wire", kind="wire")
    ingest(sessions, http, [good, gone], WATCH, now=datetime.now(UTC), policy=FAST)
    configured = replace(settings, feeds=(good, gone))
    app = TestApp(create_app(configured, engine=engine, loader=ModelLoader(lambda: None)))

    app.get("/v1/feeds", status=401)
    body = app.get("/v1/feeds", headers={"Authorization": f"Bearer {TOKEN}"}).json
    first, second = body["data"]
    assert "SECRET" not in json.dumps(body)
    assert first["url"] == feed_server.url("/p.xml") and first["kind"] == "market"
    assert first["items_seen"] == 4 and first["items_stored_24h"] == 3  # JAX, XOM, TGT
    assert first["consecutive_failures"] == 0 and first["last_success_at"] is not None
    assert second["name"] == "Gone wire" and second["kind"] == "wire"
    assert second["consecutive_failures"] == 1
    assert second["last_error"] == f"Gone wire: HTTP 500 from {gone.url}"
    assert second["next_attempt_at"] is not None and second["ticker"] is None


@pytest.mark.parametrize(("answering", "status"), [(True, 0), (False, 1)])
def test_run_once_fails_only_when_no_feed_answered(
    settings,  # type: ignore[no-untyped-def]
    feed_server: StubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    answering: bool,
    status: int,
) -> None:
    from scorer.process.cli import main

    feed_server.routes["/304.xml"] = not_modified()
    feed_server.routes["/500.xml"] = reply(b"", status=500)
    feeds = [feed_server.url("/500.xml")] + ([feed_server.url("/304.xml")] if answering else [])
    for name, value in {
        "DATABASE_URL": settings.database_url,
        "FEEDS": " ".join(feeds),
        "FINBERT_MODEL": settings.finbert_model,
        "TICKERS": "AAPL,TSLA",
        "MODEL_THREADS": "1",
        "FETCH_TIMEOUT": "2",
    }.items():
        monkeypatch.setenv(name, value)

    assert main(["run-once"]) == status
    out = json.loads(capsys.readouterr().out)
    (error,) = out["ingest"]["errors"]
    assert error == f"127.0.0.1:{feed_server.server_port}/500.xml: HTTP 500 from {feeds[0]}"
