"""EDGAR through the real ingest job, on SQLite and Postgres: SEC's getcurrent feed
puts the fetch time in its title, and a company's second filing carries its first
one's title; each filing is still its own story, stored and scored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from jobs.ingest import ingest
from jobs.score import score_pending
from scorer.ingest.fetch import FetchPolicy, make_http_session
from scorer.ingest.sources import FeedSpec, load_catalogue
from scorer.ingest.tagging import Tagger
from scorer.ingest.tickers import default_directory
from scorer.scoring.model.transformers_runtime import TransformersClassifier
from scorer.storage.tables import Article, ArticleCopy, ArticleTicker, ScoreEvent
from tests.helpers.feed_server import FIXTURES, StubServer, reply

FIXTURE = FIXTURES / "feeds" / "sec_edgar_getcurrent_latest_filings_2025-12-12.xml"
# The shipped catalogue's path and query, served from 127.0.0.1.
GETCURRENT = (
    "/cgi-bin/browse-edgar?action=getcurrent&type=8-K&company=&dateb=&owner=include"
    "&start=0&count=100&output=atom"
)
NAME = "SEC EDGAR current 8-K filings"
WALMART = "4 - Walmart Inc. (0000104169) (Issuer)"
FIRST = datetime(2025, 12, 12, 23, 5, tzinfo=UTC)  # 18:05 EST, just after the capture
FAST = FetchPolicy(timeout=2.0, deadline=5.0)
WATCH = Tagger(frozenset({"WMT"}), default_directory())


@pytest.fixture
def http() -> Iterator[requests.Session]:
    session = make_http_session("reasonator-tests/1.0")
    yield session
    session.close()


def _catalogue_spec(tmp_path: Path, url: str) -> FeedSpec:
    """The EDGAR entry as the shipped catalogue declares it, pointed at the stub."""
    path = tmp_path / "feeds.toml"
    path.write_text(f'[[feed]]\nname = "{NAME}"\nurl = "{url}"\nkind = "edgar"\n')
    (spec,) = load_catalogue(path).feeds(frozenset({"WMT"}))
    return spec


def _later_fetch() -> bytes:
    """The same feed ten minutes on: a new fetch time in its title, and Walmart's next
    filing (a new accession number) on top, under the very same title."""
    body = FIXTURE.read_bytes()
    body = body.replace(
        b"<title>Latest Filings - Fri, 12 Dec 2025 18:03:44 EST</title>",
        b"<title>Latest Filings - Fri, 12 Dec 2025 18:13:44 EST</title>",
    )
    accession = "0000104169-25-000206"
    entry = (
        f"<entry>\n<title>{WALMART}</title>\n"
        '<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/'
        f'data/104169/{accession.replace("-", "")}/{accession}-index.htm"/>\n'
        '<summary type="html">Filed: 2025-12-12 AccNo: 0000104169-25-000206</summary>\n'
        "<updated>2025-12-12T18:12:00-05:00</updated>\n"
        '<category scheme="https://www.sec.gov/" label="form type" term="4"/>\n'
        f"<id>urn:tag:sec.gov,2008:accession-number={accession}</id>\n</entry>\n"
    ).encode("iso-8859-1")
    first_entry = body.index(b"<entry>")
    return body[:first_entry] + entry + body[first_entry:]


def test_a_second_filing_under_the_same_title_is_a_new_story_stored_and_scored(
    sessions: sessionmaker[Session],
    http: requests.Session,
    feed_server: StubServer,
    tiny_model: Path,
    tmp_path: Path,
) -> None:
    spec = _catalogue_spec(tmp_path, feed_server.url(GETCURRENT))
    headers = {"Content-Type": "application/atom+xml"}
    feed_server.routes["/cgi-bin/browse-edgar"] = reply(FIXTURE.read_bytes(), headers=headers)
    first = ingest(sessions, http, [spec], WATCH, now=FIRST, policy=FAST)
    feed_server.routes["/cgi-bin/browse-edgar"] = reply(_later_fetch(), headers=headers)
    second = ingest(sessions, http, [spec], WATCH, now=FIRST + timedelta(minutes=10), policy=FAST)

    assert first.errors == [] and second.errors == []
    assert (first.new, second.new, second.copies) == (1, 1, 0)
    classifier = TransformersClassifier(str(tiny_model), None, threads=1)
    scored = score_pending(sessions, classifier, now=lambda: FIRST + timedelta(minutes=11))
    assert scored.events == 2
    with sessions() as session:
        stories = session.scalars(
            select(Article).where(Article.title == WALMART).order_by(Article.id)
        ).all()
        assert [s.url.rsplit("/", 1)[1] for s in stories if s.url] == [
            "0000104169-25-000205-index.htm",
            "0000104169-25-000206-index.htm",
        ]
        assert {s.source for s in stories} == {NAME}  # the catalogue's name, not the title
        tagged = session.scalars(
            select(ArticleTicker.article_id).where(ArticleTicker.ticker == "WMT")
        )
        assert set(tagged) == {s.id for s in stories}
        events = session.scalars(select(ScoreEvent.article_id).where(ScoreEvent.ticker == "WMT"))
        assert sorted(events) == [s.id for s in stories]
        assert session.scalars(select(ArticleCopy)).all() == []
