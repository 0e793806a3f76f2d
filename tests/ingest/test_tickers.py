"""scorer.ingest.tickers: ticker syntax, cashtags and exchange mentions, the directory."""

from __future__ import annotations

import pytest

from scorer.ingest.tickers import (
    cashtags,
    default_directory,
    exchange_mentions,
    normalise_company_name,
    parse_listing,
    parse_tickers,
    tickers_in_list,
)

# --- cashtags ---------------------------------------------------------------------------


def test_it_finds_every_cashtag() -> None:
    assert cashtags("$AAPL up, $TSLA down, $BRK.B flat.") == {"AAPL", "TSLA", "BRK.B"}


def test_it_strips_sentence_punctuation_after_a_cashtag() -> None:
    assert cashtags("Buy $MSFT. Sell $BRK.B.") == {"MSFT", "BRK.B"}


def test_it_ignores_bare_words_lowercase_cashtags_prices_and_glued_text() -> None:
    text = "AAPL, IT and ALL of A; $aapl; $1.26 trillion; US$MSFT; $NVDAs; $$AAPL"
    assert cashtags(text) == set()


def test_exchange_mentions_take_the_exchange_in_any_case_and_the_ticker_in_capitals() -> None:
    text = "Exxon (NYSE:XOM), Nasdaq-GS: INTC and NYSE American: WMT; Nasdaq: Tech stocks"
    assert exchange_mentions(text) == {"XOM", "INTC", "WMT"}


def test_a_ticker_list_is_upper_cased_deduplicated_and_skips_empty_entries() -> None:
    assert parse_tickers(" msft, nvda,,MSFT ,brk.b") == ["MSFT", "NVDA", "BRK.B"]


def test_a_malformed_ticker_list_names_every_bad_entry() -> None:
    with pytest.raises(ValueError, match="'not a ticker', '\\$X'"):
        parse_tickers("AAPL,not a ticker,$X")


# --- the symbol directory --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conformed", "name"),
    [
        ("MICROSOFT CORP", "Microsoft"),
        ("HOME DEPOT, INC.", "Home Depot"),
        ("KEYCORP /NEW/", "Keycorp"),
        ("AMAZON COM INC", "Amazon"),
        ("AT&T INC.", "AT&T"),
        ("3M CO", "3M"),
        ("BANK OF AMERICA CORP /DE/", "Bank of America"),
        ("Meta Platforms, Inc.", "Meta Platforms"),
        ("HARLEY-DAVIDSON INC", "Harley-Davidson"),
    ],
)
def test_it_normalises_sec_names_to_what_headlines_write(conformed: str, name: str) -> None:
    assert normalise_company_name(conformed) == name


def test_the_shipped_directory_maps_tickers_ciks_and_share_classes() -> None:
    directory = default_directory()
    assert len(directory.companies) == 10_365
    apple = directory.get("AAPL")
    assert apple is not None and (apple.cik, apple.name) == (320193, "Apple")
    assert directory.get("BRK.B") == directory.get("BRK-B")  # feeds write BRK.B, the SEC BRK-B
    assert sorted(directory.tickers_for_cik(1652044)) == ["GOOG", "GOOGL"]
    assert "Google" in directory.names_for("GOOG")  # an alias of GOOGL, same CIK
    assert directory.unknown(["AAPL", "ZZZZQ"]) == ["ZZZZQ"]


def test_listing_and_ticker_list_parsers() -> None:
    assert parse_listing("Nasdaq:ACME") == "ACME"
    assert parse_listing("NYSE: brk.b") == "BRK.B"
    assert parse_listing("Industrial Machinery") is None
    assert tickers_in_list("AAPL, msft;;GOOGL not-a-ticker!") == ["AAPL", "MSFT", "GOOGL"]
