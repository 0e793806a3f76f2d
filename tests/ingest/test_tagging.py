"""scorer.ingest.tagging: which watched tickers an item is about, where, how relevant."""

from __future__ import annotations

from typing import Any

import pytest

from scorer.ingest.tagging import FEED_ONLY_RELEVANCE, Tagger
from scorer.ingest.tickers import ENGLISH_TICKERS, default_directory

ENGLISH = sorted(ENGLISH_TICKERS)  # tickers that are words: watched, never matched bare
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


def test_a_feeds_own_ticker_counts_by_where_the_item_names_it(tagger: Tagger) -> None:
    own = tags(tagger, "Apple and Microsoft rally", feed_ticker="AAPL")
    assert own == {"AAPL": (1.0, "feed"), "MSFT": (0.707, "name")}
    in_summary = tags(tagger, "Big tech rallies", "Apple and Microsoft led", feed_ticker="AAPL")
    assert in_summary["AAPL"] == (0.6, "feed")


def test_a_feeds_item_that_never_names_its_ticker_counts_below_a_summary_mention(
    tagger: Tagger,
) -> None:
    # The Seeking Alpha AAPL feed carries ETF lists and other companies' news.
    found = tags(tagger, "Top 50 Dividend Growth Stocks For 2026", feed_ticker="AAPL")
    assert found == {"AAPL": (FEED_ONLY_RELEVANCE, "feed")}
    summary_mention = tags(tagger, "Tech dividends rise", "Microsoft raised its dividend")
    assert summary_mention["MSFT"][0] > FEED_ONLY_RELEVANCE


def test_unknown_watchlist_tickers_still_tag_by_cashtag() -> None:
    tagger = Tagger(frozenset({"ZZZZQ"}), default_directory())
    assert tags(tagger, "$ZZZZQ doubles") == {"ZZZZQ": (1.0, "cashtag")}
    assert tags(tagger, "Zzzzq doubles") == {}


# --- what a reader sees ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Oracle Stock Climbs After Earnings Beat", {"ORCL"}),
        ("Visa Stock Rises On Cross-Border Volume", {"V"}),
        ("Target Shares Tumble On Weak Guidance", {"TGT"}),
        ("Target Climbs After Holiday Sales Top Estimates", {"TGT"}),
        ("target SHARES slide", set()),  # a name is still capitalised
    ],
)
def test_an_ambiguous_name_is_corroborated_in_any_case(
    tagger: Tagger, title: str, expected: set[str]
) -> None:
    assert set(tags(tagger, title)) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Target To Cut 1,800 Corporate Jobs", {"TGT"}),
        ("Citi to buy a Mexican bank", {"C"}),
        ("Citi cuts Target to neutral on weak traffic", {"TGT"}),
        ("Inflation target to stay at 2%", set()),
        ("Target to the north of the city", set()),
    ],
)
def test_an_ambiguous_name_is_corroborated_by_an_act_or_rating_in_the_infinitive(
    tagger_plus: Tagger, title: str, expected: set[str]
) -> None:
    assert set(tags(tagger_plus, title)) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Amazon, Walmart and Target battle for holiday shoppers", {"AMZN", "WMT", "TGT"}),
        ("Walmart & Target & Visa see record Black Friday", {"WMT", "TGT", "V"}),
        ("Target and Visa are words", set()),  # nothing in the list is surely a company
        ("Walmart expands where Target is weak", {"WMT"}),  # not a list
    ],
)
def test_an_ambiguous_name_in_a_list_of_companies_is_a_company(
    tagger: Tagger, title: str, expected: set[str]
) -> None:
    assert set(tags(tagger, title)) == expected


def test_an_ambiguous_name_is_corroborated_by_the_items_other_evidence(tagger: Tagger) -> None:
    assert set(tags(tagger, "Target lifts its outlook", feed_ticker="TGT")) == {"TGT"}
    assert tags(tagger, "Target's new stores", "Shares of $TGT rose.")["TGT"][1] == "cashtag"
    assert tagger.mentions("Target's new stores") == []
    assert [m.ticker for m in tagger.mentions("Target's new stores", {"TGT"})] == ["TGT"]


@pytest.mark.parametrize(
    "title",
    [
        "Harrison Ford stars in a new thriller",
        "Henry Ford's Model T turns 118",
        "Ford Foundation gives $1 billion to social justice groups",
        "Merck KGaA reports higher quarterly sales",
        "Fires spread across the Amazon rainforest",
        "Deforestation In The Amazon Basin Hits A Record",
        "The Delta variant spreads in Asia",
        "Floods hit the Mekong Delta",
        "Buffett, the Oracle of Omaha, turns 96",
        "Apple Pie Recipes For Thanksgiving",
        "Visa rules tighten for foreign students",
        "Travelers stranded as storms cancel flights",
    ],
)
def test_homonyms_do_not_tag(tagger_plus: Tagger, title: str) -> None:
    assert tags(tagger_plus, title) == {}


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Micron jumps on memory demand", {"MU"}),
        ("Uber beats on rides and deliveries", {"UBER"}),
        ("HP cuts its outlook as PC demand slows", {"HPQ"}),
        ("GM recalls 100,000 trucks", {"GM"}),
        ("AMD and IBM team up on quantum", {"AMD", "IBM"}),
        ("Delta cuts its forecast as fuel costs rise", {"DAL"}),
        ("Gm and Hp are not written so", set()),  # names written in capitals, in capitals
    ],
)
def test_short_names_are_aliases(tagger_plus: Tagger, title: str, expected: set[str]) -> None:
    assert set(tags(tagger_plus, title)) == expected


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Goldman Sachs downgrades Apple to sell", {"AAPL"}),
        ("JPMorgan analyst upgrades Nvidia on data-center demand", {"NVDA"}),
        ("Citi raises its Nvidia price target to $200", {"NVDA"}),
        ("Apple upgraded to buy at Goldman Sachs", {"AAPL"}),
        ("JPMorgan raises its dividend", {"JPM"}),  # the bank's own news
        ("Goldman Sachs beats on trading revenue", {"GS"}),
    ],
)
def test_a_broker_rating_another_company_is_not_tagged(
    tagger_plus: Tagger, title: str, expected: set[str]
) -> None:
    assert set(tags(tagger_plus, title)) == expected


@pytest.fixture(scope="module")
def tagger_plus() -> Tagger:
    extra = {"F", "MRK", "DAL", "MU", "UBER", "HPQ", "GM", "AMD", "IBM", "TRV", "C", "TSLA"}
    return Tagger(DOW_AND_WORDS | extra, default_directory())


def test_the_finder_marks_an_unwatched_companys_cashtag_or_exchange_mention(
    tagger: Tagger,
) -> None:
    text = "$MSFT and Apple beat; $ZZZZ (NYSE: ZZ) missed"
    found = tagger.finder()(text)
    assert [(t, text[a:b]) for t, a, b in found] == [
        ("MSFT", "$MSFT"),
        ("AAPL", "Apple"),
        (None, "$ZZZZ"),
        (None, "NYSE: ZZ"),
    ]
