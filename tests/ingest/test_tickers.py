"""scorer.ingest.tickers: parsing ticker lists and tagging text with watchlisted tickers."""

from __future__ import annotations

from typing import Any

import pytest

from scorer.ingest.tickers import (
    Tagger,
    default_directory,
    normalise_company_name,
    parse_listing,
    parse_tickers,
    tag_tickers,
    tickers_in_list,
)

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


# --- the symbol directory --------------------------------------------------------------------

ENGLISH = [
    "A",
    "IT",
    "ALL",
    "ON",
    "ARE",
    "NOW",
    "CAT",
    "LOW",
    "KEY",
    "FAST",
    "GOOD",
    "BE",
    "AI",
    "T",
    "F",
    "UPS",
]
DOW_AND_WORDS = frozenset(
    [
        "AAPL",
        "MSFT",
        "GOOGL",
        "META",
        "JPM",
        "XOM",
        "INTC",
        "TGT",
        "V",
        "WMT",
        "GS",
        "BRK.B",
        "BAC",
        "NVDA",
        "AMZN",
        "ORCL",
        "CSCO",
        *ENGLISH,
    ]
)


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger(DOW_AND_WORDS, default_directory())


def tags(tagger: Tagger, title: str, summary: str = "", **kw: Any) -> dict[str, tuple[float, str]]:
    return {t.ticker: (t.relevance, t.tagged_by) for t in tagger.tag(title, summary, **kw)}


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


# --- tagging real headlines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Apple’s CXMT Bet Could Strengthen Its Memory Supply, But Risks Remain", {"AAPL"}),
        ("Why JPMorgan is investing big in the 2028 LA Olympics", {"JPM"}),
        ("Three reasons Goldman's co-head of global banking says to stay invested", {"GS"}),
        ("Bank of America spends $250 million a year on GLP-1 drugs", {"BAC"}),
        ("Oracle (ORCL) Adds Quantum Computing To Its Cloud", {"ORCL"}),
        ("Cisco forecasts annual revenue above estimates on sustained AI spending", {"CSCO"}),
        ("Berkshire earnings rose last quarter and CEO Greg Abel deploys cash", {"BRK.B"}),
        ("Nvidia lines up $500 billion in financing as CEO Jensen Huang talks", {"NVDA"}),
        ("Exxon Mobil (NYSE:XOM) and Google (NASDAQ: GOOGL) in focus", {"XOM", "GOOGL"}),
        ("Intel beats, Nasdaq-GS: INTC jumps", {"INTC"}),
        ("Walmart Inc. (NYSE American: WMT) test of an odd listing", {"WMT"}),
    ],
)
def test_it_finds_the_companies_real_headlines_name(
    tagger: Tagger, title: str, expected: set[str]
) -> None:
    assert set(tags(tagger, title)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "'Big Short' investor Steve Eisman sees an Achilles' heel in the AI boom",
        "AI computing power is becoming a tradable asset class as CME launches futures",
        "It Is All On: A New Era for Good Energy Storage Begins Now",
        "Is betting on elections using prediction markets illegal? IT is unclear, NOW or never",
        "A key, fast, low-cost way to BE ready: CAT, LOW, KEY, FAST, GOOD, ARE, ON, ALL, UPS, T, F",
        "Stock Market Today: Nasdaq Charges Higher On Inflation Report",
        "Retailers Target Holiday Shoppers With Early Deals",
        "Visa applications rise as travel rebounds; target practice for a new block",
        "apple pie and microsoft-free weekends",
        "Luigi Mangione expected to plead guilty in UnitedHealthcare killing",
    ],
)
def test_it_never_tags_english_words_or_lowercase_names(tagger: Tagger, text: str) -> None:
    assert tags(tagger, text, text) == {}


def test_an_ambiguous_name_tags_only_when_the_text_shows_the_company(tagger: Tagger) -> None:
    assert set(tags(tagger, "Target Corporation Reports Third Quarter Earnings")) == {"TGT"}
    assert set(tags(tagger, "Target shares fall 5% on weak guidance")) == {"TGT"}
    assert set(tags(tagger, "Visa (V) raises its dividend")) == {"V"}
    assert set(tags(tagger, "Target a 10% return with this plan")) == set()


def test_exchange_mentions_and_cashtags_of_english_word_tickers_do_tag(tagger: Tagger) -> None:
    found = tags(tagger, "Caterpillar Inc. (NYSE: CAT) raises outlook", "Also $F and $T.")
    assert found == {"CAT": (0.577, "exchange"), "F": (0.346, "cashtag"), "T": (0.346, "cashtag")}


def test_structured_tags_and_edgar_ciks_map_onto_the_watchlist(tagger: Tagger) -> None:
    assert tags(tagger, "8-K filing", ciks=[104169]) == {"WMT": (0.7, "structured")}
    assert tags(tagger, "news", structured=["BRK-B", "ZZZZ"]) == {"BRK.B": (0.495, "structured")}


# --- relevance ---------------------------------------------------------------------------------


def test_the_headline_counts_more_than_the_summary(tagger: Tagger) -> None:
    headline = tags(tagger, "Microsoft raises its dividend")["MSFT"][0]
    summary = tags(tagger, "Tech dividends rise", "Microsoft raised its dividend")["MSFT"][0]
    assert headline == 1.0 and summary == 0.6


def test_the_only_company_named_counts_more_than_one_of_five(tagger: Tagger) -> None:
    alone = tags(tagger, "Nvidia leads chip stocks higher")["NVDA"][0]
    crowd = tags(tagger, "Nvidia, Apple, Microsoft, Google and Amazon lead the way")
    assert alone == 1.0
    assert crowd["NVDA"][0] == pytest.approx(1 / 5**0.5, abs=1e-3) and len(crowd) == 5


def test_a_feeds_own_ticker_counts_a_lot(tagger: Tagger) -> None:
    assert tags(tagger, "Wall Street Week Ahead", feed_ticker="AAPL") == {"AAPL": (0.9, "feed")}
    own = tags(tagger, "Apple and Microsoft rally", feed_ticker="AAPL")
    assert own == {"AAPL": (1.0, "feed"), "MSFT": (0.707, "name")}


def test_unknown_watchlist_tickers_still_tag_by_cashtag() -> None:
    tagger = Tagger(frozenset({"ZZZZQ"}), default_directory())
    assert tags(tagger, "$ZZZZQ doubles") == {"ZZZZQ": (1.0, "cashtag")}
    assert tags(tagger, "Zzzzq doubles") == {}


def test_listing_and_ticker_list_parsers() -> None:
    assert parse_listing("Nasdaq:ACME") == "ACME"
    assert parse_listing("NYSE: brk.b") == "BRK.B"
    assert parse_listing("Industrial Machinery") is None
    assert tickers_in_list("AAPL, msft;;GOOGL not-a-ticker!") == ["AAPL", "MSFT", "GOOGL"]
