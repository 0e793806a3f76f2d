"""scorer.ingest.sources: the FEEDS setting's entries."""

from __future__ import annotations

import pytest

from scorer.ingest.sources import FeedSpec, parse_feed_list

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
