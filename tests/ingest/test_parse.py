"""scorer.ingest.fetch: dedup keys, canned real-world feeds, and fetching from a server on
127.0.0.1."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests

from scorer.ingest.fetch import fetch_feed, make_http_session
from scorer.ingest.items import canonical_url, dedup_key
from scorer.ingest.parse import FeedError, ParsedFeed, parse_feed
from scorer.ingest.sources import FeedSpec
from tests.helpers.feed_server import Route, StubServer, reply

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
WATCHLIST = frozenset({"AAPL", "MSFT", "NVDA", "BRK.B"})
SPEC = FeedSpec("https://example.com/feeds/news.rss")


def parse_fixture(name: str, spec: FeedSpec = SPEC) -> ParsedFeed:
    return parse_feed((FEEDS / name).read_bytes(), spec=spec, watchlist=WATCHLIST)


def rss(*items: str, channel_title: str = "Wire") -> bytes:
    title = f"<title>{channel_title}</title>" if channel_title else ""
    body = "".join(f"<item>{item}</item>" for item in items)
    return f'<rss version="2.0"><channel>{title}{body}</channel></rss>'.encode()


@pytest.fixture
def stub(feed_server: StubServer) -> StubServer:
    return feed_server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = make_http_session("reasonator-tests/1.0")
    yield session
    session.close()


# --- dedup keys ----------------------------------------------------------------------------


def test_it_canonicalises_links_without_tracking_params_or_fragment() -> None:
    url = "HTTPS://WWW.Example.COM/News/A?id=7&utm_source=rss&UTM_Medium=x&b=#comments"
    assert canonical_url(url) == "https://www.example.com/News/A?id=7&b="


def test_it_gives_a_seeking_alpha_article_one_key_in_every_ticker_feed() -> None:
    def key(url: str) -> str:
        return dedup_key(url=url, guid="1", source="SA", title="t", published=None)

    article = "https://seekingalpha.com/news/4562077-trending-stocks"
    assert key(f"{article}?source=feed_symbol_AAPL") == key(f"{article}?source=feed_symbol_MSFT")
    assert key(f"{article}?source=feed_symbol_AAPL") == key(article)
    assert key(f"{article}?source=newsletter") != key(article)  # only the feed marker goes


def test_it_falls_back_from_link_to_guid_to_what_the_reader_sees() -> None:
    when = datetime(2026, 8, 14, 7, 54, 20, tzinfo=UTC)
    by_link = dedup_key(
        url="https://a.example.com/1", guid="g", source="S", title="T", published=when
    )
    by_guid = dedup_key(url=None, guid="g", source="S", title="T", published=when)
    by_text = dedup_key(url=None, guid=None, source="S", title="T", published=when)
    assert len({by_link, by_guid, by_text}) == 3
    assert by_guid == dedup_key(url=None, guid="g", source="other", title="x", published=None)
    assert by_text != dedup_key(url=None, guid=None, source="S", title="T", published=None)
    assert by_link == dedup_key(
        url="https://a.example.com/1", guid="h", source="", title="", published=None
    )


# --- parse_feed on canned real-world feeds ---------------------------------------------------


def test_it_keeps_distinct_stories_that_share_a_yahoo_guid() -> None:
    # Yahoo gives seven different investors.com stories the guid "?src=A00220&yptr=yahoo";
    # keyed by guid, six of them would vanish.
    feed = parse_fixture("yahoo_finance_rssindex_2026-08-14_dup_guids.xml")
    assert len(feed.items) == 48 and feed.warning is None
    assert len({item.dedup_key for item in feed.items}) == 48
    ibd = [item for item in feed.items if item.url and "investors.com" in item.url]
    assert len(ibd) == 7
    first = feed.items[0]
    assert first.title == "AARP issues urgent call on Medicare drug costs"
    assert first.source == "example.com/feeds/news.rss" and first.summary == ""
    assert first.published_at == datetime(2026, 8, 12, 22, 17, tzinfo=UTC)


def test_it_stores_duplicate_items_once() -> None:
    feed = parse_feed(
        rss(
            "<title>First</title><link>https://a.example.com/1</link>",
            "<title>Again</title><link>https://A.EXAMPLE.com/1?utm_source=x#top</link>",
            "<title>Other</title><link>https://a.example.com/2</link>",
            "<title>No link</title><guid isPermaLink='false'>g-1</guid>",
            "<title>No link, again</title><guid isPermaLink='false'>g-1</guid>",
        ),
        spec=SPEC,
        watchlist=WATCHLIST,
    )
    assert [item.title for item in feed.items] == ["First", "Other", "No link"]


def test_it_takes_investings_zone_less_dates_as_utc() -> None:
    # "2026-08-14 07:54:20" is not RFC 822 and names no zone; feedparser still parses it and
    # takes it as UTC (an assumption, not something the feed says).
    feed = parse_fixture("investing_com_stock_news_nonrfc822_dates.xml")
    assert len(feed.items) == 10 and feed.warning is None
    assert feed.items[0].title == "Why is CK Hutchison stock sliding today?"
    assert feed.items[0].published_at == datetime(2026, 8, 14, 7, 54, 20, tzinfo=UTC)
    assert all(item.published_at is not None for item in feed.items)
    assert "Why is Schouw & Co. stock surging today?" in {item.title for item in feed.items}
    assert {item.summary for item in feed.items} == {""}  # enclosures only, no description


def test_it_tags_every_item_of_a_per_ticker_feed_with_its_ticker() -> None:
    spec = FeedSpec("https://seekingalpha.com/api/sa/combined/AAPL.xml", ticker="AAPL")
    feed = parse_fixture("seekingalpha_aapl_symbol_feed_2026-03-08.xml", spec)
    assert len(feed.items) == 20
    assert all(item.tags[0].ticker == "AAPL" for item in feed.items)
    assert all(item.tags[0].tagged_by == "feed" for item in feed.items)
    # One headline names Microsoft too: tagged by name, sharing the attention with Apple.
    shared = [item for item in feed.items if item.tickers != {"AAPL"}]
    assert [item.title for item in shared] == [
        "Apple, Microsoft, ServiceNow among 10 tech stocks to own amid Iran conflict: Wedbush"
    ]
    assert [(t.ticker, t.relevance, t.tagged_by) for t in shared[0].tags] == [
        ("AAPL", 1.0, "feed"),
        ("MSFT", 0.707, "name"),
    ]
    first = feed.items[0]
    assert first.title == "Wall Street Week Ahead"
    assert first.source == "seekingalpha.com/api/sa/combined/AAPL.xml AAPL"
    assert first.published_at == datetime(2026, 3, 8, 11, 23, 46, tzinfo=UTC)  # -0400
    assert (
        first.url
        == "https://seekingalpha.com/article/4879882-wall-street-week-ahead?source=feed_symbol_AAPL"
    )
    assert first.dedup_key == dedup_key(
        url="https://seekingalpha.com/article/4879882-wall-street-week-ahead",
        guid=None,
        source="",
        title="",
        published=None,
    )


EDGAR = FeedSpec(
    "https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent&output=atom",
    name="SEC EDGAR current filings",
    kind="edgar",
)


def test_it_reads_the_edgar_atom_feed() -> None:
    # ISO-8859-1 Atom with <updated> only; each filing appears twice (Issuer and Reporting
    # rows) under one id but two links, so both rows stay.
    feed = parse_fixture("sec_edgar_getcurrent_latest_filings_2025-12-12.xml", EDGAR)
    assert len(feed.items) == 100 and feed.warning is None
    first, second = feed.items[:2]
    assert first.title == "4 - Perez Daniel Antonio (0002063236) (Reporting)"
    assert second.title == "4 - Hinge Health, Inc. (0001673743) (Issuer)"
    assert first.summary == "Filed: 2025-12-12 AccNo: 0002063236-25-000004 Size: 10 KB"
    assert first.published_at == datetime(2025, 12, 12, 23, 2, 43, tzinfo=UTC)
    # The feed's name, not its title "Latest Filings - Fri, 12 Dec 2025 18:03:44 EST":
    # that changes with every fetch.
    assert first.source == "SEC EDGAR current filings"
    # A filing is never another's syndicated copy: it has its own accession number.
    assert {item.title_key for item in feed.items} == {None}


def test_it_reads_the_cnbc_feed() -> None:
    feed = parse_fixture("cnbc_finance_section_2026-08-14.xml")
    assert len(feed.items) == 30 and feed.warning is None
    first = feed.items[0]
    assert first.title == "Uber partners with China's Pony.ai for 2,000 robotaxis in Europe"
    assert first.summary.startswith("The rollout comes as robotaxi fleet sizes")
    assert first.published_at == datetime(2026, 8, 14, 1, 2, 39, tzinfo=UTC)
    assert first.source == SPEC.name == "example.com/feeds/news.rss"


def test_it_refuses_a_sitemap() -> None:
    with pytest.raises(FeedError) as error:
        parse_fixture("bloomberg_news_sitemap_not_a_feed.xml")
    assert str(error.value) == "a sitemap, not an RSS or Atom feed"


@pytest.mark.parametrize(
    "content", [b"", b"<html><body>Please log in</body></html>", b'{"items": []}']
)
def test_it_refuses_what_is_not_a_feed(content: bytes) -> None:
    with pytest.raises(FeedError) as error:
        parse_feed(content, spec=SPEC, watchlist=WATCHLIST, content_type="text/html")
    assert "\n" not in str(error.value)


def test_it_refuses_an_ill_formed_document_without_entries() -> None:
    with pytest.raises(FeedError, match=r"^not a well-formed feed: .*unclosed token$"):
        parse_fixture("feedparser_illformed_unclosed_root.xml")


def test_it_accepts_an_ill_formed_document_with_entries_and_warns() -> None:
    # feedparser's loose parser finds one entry in the truncated CDATA, with neither title nor
    # link, so it is dropped; the warning says what was wrong.
    feed = parse_fixture("feedparser_illformed_incomplete_cdata.xml")
    assert feed.items == ()
    assert feed.warning is not None
    assert "XML or text declaration not at start of entity" in feed.warning


def test_it_turns_feed_html_into_plain_text() -> None:
    long_title = "word " * 300
    feed = parse_feed(
        rss(
            "<title>AT&amp;amp;T x&lt;y</title><link>https://a.example.com/1</link>"
            "<description>&lt;p&gt;Shares of &lt;b&gt;Apple&lt;/b&gt; &amp;amp; co"
            "&lt;br/&gt;rose&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
            "&lt;p&gt;$AAPL&amp;nbsp;up&lt;/p&gt;</description>",
            f"<title>{long_title}</title><link>https://a.example.com/2</link>",
            "<title></title><link>javascript:alert(1)</link>",
        ),
        spec=SPEC,
        watchlist=WATCHLIST,
    )
    first, second = feed.items
    assert first.title == "AT&T x<y"
    assert first.summary == "Shares of Apple & co rose $AAPL up"
    assert first.tickers == {"AAPL"}
    assert len(second.title) == 1000 and second.summary == "" and second.published_at is None


def test_it_decodes_by_the_http_charset_and_resolves_relative_links() -> None:
    content = rss("<title>Société Générale</title><link>/news/1</link>").decode().encode("latin-1")
    feed = parse_feed(
        content,
        spec=FeedSpec("https://example.com/feeds/news.rss"),
        watchlist=WATCHLIST,
        content_type="application/rss+xml; charset=iso-8859-1",
    )
    assert feed.warning is None
    assert [(item.title, item.url) for item in feed.items] == [
        ("Société Générale", "https://example.com/news/1")
    ]


def test_an_items_source_is_its_feeds_name_whatever_the_feeds_title() -> None:
    for title in ("", "Wire at 18:03:44", "Wire at 18:13:44"):
        feed = parse_feed(
            rss("<title>x</title>", channel_title=title),
            spec=FeedSpec("https://bob:hunter2@News.Example.com/rss/?key=SECRET"),
            watchlist=WATCHLIST,
        )
        assert feed.items[0].source == "news.example.com/rss"  # no password, no query
    named = FeedSpec("https://news.example.com/rss", name="Example wire")
    feed = parse_feed(rss("<title>x</title>"), spec=named, watchlist=WATCHLIST)
    assert feed.items[0].source == "Example wire"


def test_it_never_reads_content_as_a_local_file_name(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would open a file of that name; parse_feed hands it a stream.
    path = tmp_path / "feed.xml"
    path.write_bytes((FEEDS / "cnbc_finance_section_2026-08-14.xml").read_bytes())
    with pytest.raises(FeedError):
        parse_feed(str(path).encode(), spec=SPEC, watchlist=WATCHLIST)


def test_it_parses_the_external_parameter_entity_fixture_as_an_empty_feed() -> None:
    feed = parse_fixture("feedparser_doctype_external_parameter_entity.xml")
    assert feed == ParsedFeed(items=(), warning=None)


EXTERNAL_ENTITY_URL = b"http://www.w3.org/TR/xhtml1/DTD/xhtml-lat1.ent"


@pytest.mark.parametrize("kind", ["parameter entity (fixture)", "general entity in a title"])
def test_it_never_fetches_an_external_entity(stub: StubServer, kind: str) -> None:
    entity_url = stub.url("/entity.ent")
    stub.routes["/entity.ent"] = reply(b'<!ENTITY nbsp "&#160;">')
    if kind == "parameter entity (fixture)":
        fixture = (FEEDS / "feedparser_doctype_external_parameter_entity.xml").read_bytes()
        content = fixture.replace(EXTERNAL_ENTITY_URL, entity_url.encode())
    else:
        content = (
            f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{entity_url}">\n]>\n'
        ).encode() + rss("<title>a &xxe; b</title><link>https://a.example.com/1</link>")
    assert entity_url.encode() in content

    feed = parse_feed(content, spec=SPEC, watchlist=WATCHLIST)

    assert stub.seen == []
    if kind == "general entity in a title":  # declaration stripped: the reference is left as is
        assert [item.title for item in feed.items] == ["a &xxe; b"]
        assert feed.warning is not None and "undefined entity" in feed.warning
    # The control: a real fetch of that URL is seen, so the empty list above means something.
    requests.get(entity_url, timeout=5).close()
    assert [path for path, _ in stub.seen] == ["/entity.ent"]


# --- fetch_feed ----------------------------------------------------------------------------

CNBC = (FEEDS / "cnbc_finance_section_2026-08-14.xml").read_bytes()


def test_it_fetches_a_feed_and_its_validators(stub: StubServer, http: requests.Session) -> None:
    headers = {
        "Content-Type": "application/rss+xml; charset=utf-8",
        "ETag": '"v1"',
        "Last-Modified": "Fri, 14 Aug 2026 01:05:00 GMT",
    }
    stub.routes["/cnbc.xml"] = reply(CNBC, headers=headers)

    result = fetch_feed(http, stub.url("/cnbc.xml"), etag=None, last_modified=None)

    assert (result.status, result.content) == (200, CNBC)
    assert result.etag == '"v1"' and result.last_modified == "Fri, 14 Aug 2026 01:05:00 GMT"
    assert result.content_type == "application/rss+xml; charset=utf-8"
    ((_, sent),) = stub.seen
    assert sent["User-Agent"] == "reasonator-tests/1.0"
    assert "application/rss+xml" in sent["Accept"]
    assert "If-None-Match" not in sent and "If-Modified-Since" not in sent


def test_it_asks_conditionally_and_takes_a_304(stub: StubServer, http: requests.Session) -> None:
    def conditional(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':
            handler.send_response(304)
            handler.send_header("ETag", '"v1"')
            handler.end_headers()
        else:
            reply(CNBC)(handler)

    stub.routes["/cnbc.xml"] = conditional
    modified = "Fri, 14 Aug 2026 01:05:00 GMT"

    result = fetch_feed(http, stub.url("/cnbc.xml"), etag='"v1"', last_modified=modified)

    assert result.status == 304 and result.content == b"" and result.content_type is None
    assert result.etag == '"v1"' and result.last_modified == modified  # kept: not resent
    ((_, sent),) = stub.seen
    assert sent["If-None-Match"] == '"v1"' and sent["If-Modified-Since"] == modified


def test_it_reports_an_http_error_without_the_query(
    stub: StubServer, http: requests.Session
) -> None:
    url = stub.url("/missing.xml?apikey=SECRET")
    with pytest.raises(FeedError) as error:
        fetch_feed(
            http, url.replace("http://", "http://bob:hunter2@"), etag=None, last_modified=None
        )
    assert str(error.value) == f"HTTP 404 from {stub.url('/missing.xml')}"
    assert "SECRET" not in repr(error.value) and "hunter2" not in repr(error.value)


def test_it_retries_a_503_and_then_succeeds(stub: StubServer, http: requests.Session) -> None:
    answers = iter([reply(b"busy", 503, {"Retry-After": "0"}), reply(CNBC)])
    stub.routes["/cnbc.xml"] = lambda handler: next(answers)(handler)

    result = fetch_feed(http, stub.url("/cnbc.xml"), etag=None, last_modified=None)

    assert result.status == 200 and result.content == CNBC
    assert len(stub.seen) == 2


def test_it_gives_up_after_two_retries(stub: StubServer, http: requests.Session) -> None:
    stub.routes["/busy.xml"] = reply(b"busy", 503)
    with pytest.raises(FeedError) as error:
        fetch_feed(http, stub.url("/busy.xml"), etag=None, last_modified=None)
    assert str(error.value) == f"HTTP 503 from {stub.url('/busy.xml')}"
    assert len(stub.seen) == 3


def test_it_times_out_on_a_slow_server_once(stub: StubServer, http: requests.Session) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        assert isinstance(handler.server, StubServer)
        handler.server.release.wait(timeout=5)  # until teardown, far beyond the client's 0.2 s

    stub.routes["/slow.xml"] = slow
    started = time.monotonic()
    with pytest.raises(FeedError) as error:
        fetch_feed(
            http, stub.url("/slow.xml?token=SECRET"), etag=None, last_modified=None, timeout=0.2
        )
    assert str(error.value) == f"timed out fetching {stub.url('/slow.xml')}"
    assert time.monotonic() - started < 2  # a read timeout is not retried
    assert error.value.__suppress_context__
    assert len(stub.seen) == 1


def test_it_reports_a_refused_connection_without_the_query(http: requests.Session) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FeedError) as error:
        fetch_feed(
            http, f"http://127.0.0.1:{port}/feed.xml?key=SECRET", etag=None, last_modified=None
        )
    assert str(error.value) == f"connection to http://127.0.0.1:{port}/feed.xml failed"
    assert error.value.__suppress_context__  # requests' message, URL and all, stays unshown


BIG = b"x" * 5000


@pytest.mark.parametrize(
    "route",
    [
        pytest.param(reply(BIG), id="declared length"),
        pytest.param(reply(BIG, length=False), id="streamed without length"),
        pytest.param(
            reply(gzip.compress(BIG), headers={"Content-Encoding": "gzip"}), id="gzip bomb"
        ),
    ],
)
def test_it_refuses_an_oversized_body(
    stub: StubServer, http: requests.Session, route: Route
) -> None:
    stub.routes["/big.xml"] = route
    with pytest.raises(FeedError) as error:
        fetch_feed(
            http, stub.url("/big.xml?k=SECRET"), etag=None, last_modified=None, max_bytes=1000
        )
    assert str(error.value) == f"body over 1000 bytes from {stub.url('/big.xml')}"


# --- structured tags ------------------------------------------------------------------------


def _tagged(
    name: str, watchlist: frozenset[str], spec: FeedSpec = SPEC
) -> dict[str, list[tuple[str, str]]]:
    feed = parse_feed((FEEDS / name).read_bytes(), spec=spec, watchlist=watchlist)
    return {item.title: [(t.ticker, t.tagged_by) for t in item.tags] for item in feed.items}


def test_it_reads_nasdaqs_tickers_element() -> None:
    found = _tagged("nasdaq_style.xml", frozenset({"AAPL", "MSFT", "TSLA"}))
    assert found["3 Reasons to Hold Your Shares Right Now"] == [("AAPL", "structured")]
    seven = found[
        "Magnificent Seven Stocks: Nvidia, Apple, Microsoft, Alphabet and Amazon Lead the Way"
    ]
    assert seven == [("AAPL", "structured"), ("MSFT", "structured")]
    assert found["Pre-Market Most Active Section"] == []  # "NASDAQ 100" is no listing


def test_it_reads_globenewswires_stock_categories() -> None:
    found = _tagged("globenewswire_style.xml", frozenset({"ACME", "INTC", "MSFT", "IT", "ALL"}))
    assert found["ACME Robotics Reports Record Third Quarter Revenue"] == [("ACME", "structured")]
    assert found["Intel Corporation Announces Quarterly Dividend of $0.125 per Share"] == [
        ("INTC", "structured")
    ]
    assert found["It Is All On: A New Era for Good Energy Storage Begins Now"] == []


def test_it_maps_an_edgar_filers_cik_to_its_ticker() -> None:
    found = _tagged(
        "sec_edgar_getcurrent_latest_filings_2025-12-12.xml", frozenset({"WMT", "CVNA"}), EDGAR
    )
    assert found["4 - Walmart Inc. (0000104169) (Issuer)"] == [("WMT", "structured")]
    assert found["4 - CARVANA CO. (0001690820) (Issuer)"] == [("CVNA", "structured")]
    # A reporting owner is a person: the Walton trust's row is not Walmart's news.
    assert found["4 - Walton Family Holdings Trust (0001678632) (Reporting)"] == []


def test_edgar_rules_follow_the_host_and_only_edgar_reads_ciks() -> None:
    fixture = "sec_edgar_getcurrent_latest_filings_2025-12-12.xml"
    walmart, watch = "4 - Walmart Inc. (0000104169) (Issuer)", frozenset({"WMT"})
    # A sec.gov URL in FEEDS is EDGAR without saying so ...
    on_sec = FeedSpec("https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent")
    assert on_sec.kind == "market" and on_sec.rules.name == "edgar"
    assert _tagged(fixture, watch, on_sec)[walmart] == [("WMT", "structured")]
    # ... and a CIK in another kind of feed's title is no structured tag (the name
    # "Walmart" in the headline still is a tag).
    assert SPEC.rules.name == "market"
    assert _tagged(fixture, watch, SPEC)[walmart] == [("WMT", "name")]


def test_it_reads_the_ticker_from_prnewswire_text() -> None:
    found = _tagged("prnewswire_style.xml", frozenset({"JAX", "TGT", "XOM", "IT", "ALL", "NOW"}))
    assert found["Jaxon Logistics to Acquire Harbor Freight Lines for $1.2 Billion"] == [
        ("JAX", "exchange")
    ]
    assert found["Target Corporation Reports Third Quarter Earnings"] == [("TGT", "exchange")]
    assert found["Retailers Target Holiday Shoppers With Early Deals, Survey Finds"] == []
