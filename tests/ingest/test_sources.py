"""scorer.ingest.sources: the FEEDS setting's entries, catalogues, feed names."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.ingest.sources import FeedSpec, load_catalogue, parse_feed_list

# --- parse_feed_list -----------------------------------------------------------------------


def test_it_reads_plain_and_per_ticker_feeds() -> None:
    raw = """
        https://a.example.com/rss
        aapl=https://b.example.com/symbol.xml?s=AAPL&lang=en
        https://c.example.com/q?ticker=MSFT
    """
    assert parse_feed_list(raw) == (
        FeedSpec("https://a.example.com/rss"),
        FeedSpec("https://b.example.com/symbol.xml?s=AAPL&lang=en", ticker="AAPL"),
        FeedSpec("https://c.example.com/q?ticker=MSFT"),  # "=" in a query is no ticker
    )


def test_it_drops_exact_duplicate_feeds_but_keeps_per_ticker_variants() -> None:
    raw = "https://a.example.com/rss BRK.B=https://a.example.com/rss https://a.example.com/rss"
    assert parse_feed_list(raw) == (
        FeedSpec("https://a.example.com/rss"),
        FeedSpec("https://a.example.com/rss", ticker="BRK.B"),
    )
    assert parse_feed_list("  \n ") == ()


@pytest.mark.parametrize(
    ("entry", "shown"),
    [
        ("ftp://a.example.com/rss", "ftp://a.example.com/rss"),
        ("a.example.com/rss", "a.example.com/rss"),
        ("https://", "https://"),
        ("file:///etc/passwd", "file:///etc/passwd"),
        ("AAPL=", "AAPL="),
        ("=https://a.example.com/rss", "=https://a.example.com/rss"),
        ("$AAPL=https://a.example.com/rss", "$AAPL=https://a.example.com/rss"),
        ("ABCDEFGHIJK=https://a.example.com/rss", "ABCDEFGHIJK=https://a.example.com/rss"),
        ("AAPL=ftp://a.example.com/rss", "AAPL=ftp://a.example.com/rss"),
    ],
)
def test_it_rejects_a_bad_feed_entry_by_name(entry: str, shown: str) -> None:
    with pytest.raises(ValueError, match="entry") as error:
        parse_feed_list(f"https://ok.example.com/rss {entry}")
    assert repr(shown) in str(error.value)


def test_it_keeps_query_secrets_out_of_setting_errors() -> None:
    with pytest.raises(ValueError) as error:
        parse_feed_list("aapl=ftp://bob:hunter2@a.example.com/rss?apikey=SECRET")
    assert "'AAPL=ftp://a.example.com/rss'" in str(error.value)
    assert "SECRET" not in str(error.value) and "hunter2" not in str(error.value)


# --- names -----------------------------------------------------------------------------------


def test_a_feeds_default_name_is_its_host_and_path_without_query_or_password() -> None:
    assert FeedSpec("https://Feeds.Example.com/rss/news.xml?key=SECRET").name == (
        "feeds.example.com/rss/news.xml"
    )
    assert FeedSpec("https://bob:hunter2@a.example.com:8443/").name == "a.example.com:8443"
    per_ticker = FeedSpec("https://a.example.com/symbol.xml?s=AAPL", ticker="AAPL")
    assert per_ticker.name == "a.example.com/symbol.xml AAPL"
    assert FeedSpec("https://a.example.com/rss", name="A wire").name == "A wire"


def test_a_catalogue_feed_is_named_by_its_entry(tmp_path: Path) -> None:
    path = tmp_path / "feeds.toml"
    path.write_text(
        '[[feed]]\nname = "Edgar"\nurl = "https://www.sec.gov/x?output=atom"\nkind = "edgar"\n'
        '[[feed]]\nname = "Quotes"\nurl = "https://q.example.com/{ticker}.xml"\nkind = "ticker"\n'
    )
    catalogue = load_catalogue(path)
    assert [s.name for s in catalogue.feeds({"MSFT", "AAPL"})] == [
        "Edgar",
        "Quotes AAPL",
        "Quotes MSFT",
    ]
    assert [s.name for s in catalogue.feeds({"AAPL"}, skip=frozenset({"edgar"}))] == ["Quotes AAPL"]
