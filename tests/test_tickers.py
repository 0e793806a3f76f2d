"""scorer.tickers: parsing ticker lists and tagging text with watchlisted tickers."""

from __future__ import annotations

import pytest

from scorer.tickers import parse_tickers, tag_tickers

WATCHLIST = frozenset({"AAPL", "MSFT", "NVDA", "BRK.B"})


# --- tag_tickers ---------------------------------------------------------------------------


def test_it_tags_watchlisted_cashtags_only() -> None:
    text = "$AAPL up, $TSLA down, $BRK.B flat."
    assert tag_tickers(text, WATCHLIST, None) == {"AAPL", "BRK.B"}


def test_it_strips_sentence_punctuation_after_a_cashtag() -> None:
    assert tag_tickers("Buy $MSFT. Sell $BRK.B.", WATCHLIST, None) == {"MSFT", "BRK.B"}


def test_it_ignores_bare_words_lowercase_cashtags_prices_and_glued_text() -> None:
    text = "AAPL, IT and ALL of A; $aapl; $1.26 trillion; US$MSFT; $NVDAs; $$AAPL"
    assert tag_tickers(text, WATCHLIST | {"IT", "ALL", "A"}, None) == frozenset()


def test_it_always_includes_the_feed_ticker() -> None:
    assert tag_tickers("nothing here", WATCHLIST, "TSLA") == {"TSLA"}
    assert tag_tickers("and $NVDA", WATCHLIST, "AAPL") == {"AAPL", "NVDA"}


def test_a_ticker_list_is_upper_cased_deduplicated_and_skips_empty_entries() -> None:
    assert parse_tickers(" msft, nvda,,MSFT ,brk.b") == ["MSFT", "NVDA", "BRK.B"]


def test_a_malformed_ticker_list_names_every_bad_entry() -> None:
    with pytest.raises(ValueError, match="'not a ticker', '\\$X'"):
        parse_tickers("AAPL,not a ticker,$X")
