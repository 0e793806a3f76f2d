"""scorer.ingest.kinds: a feed kind is one registry entry, and every rule that differs
between kinds is read from it."""

from __future__ import annotations

import dataclasses

import pytest

from scorer.ingest.kinds import EDGAR, KINDS, FeedKind, edgar_tags, kind_of, structured_tickers
from scorer.ingest.sources import FeedSpec


def test_the_registry_holds_market_ticker_wire_and_edgar_in_that_order() -> None:
    shipped = ["market", "ticker", "wire", "edgar"]
    assert [name for name in KINDS if name in shipped] == shipped  # a new kind may join
    assert all(name == kind.name for name, kind in KINDS.items())
    assert KINDS["edgar"] is EDGAR


def test_edgar_is_an_entry_like_the_others_with_its_own_rules() -> None:
    assert (EDGAR.hosts, EDGAR.contact_setting, EDGAR.rate_per_second) == (
        ("sec.gov",),
        "EDGAR_USER_AGENT",
        10,
    )
    assert EDGAR.structured is edgar_tags and EDGAR.copies_by_title is False
    plain = [kind for name, kind in KINDS.items() if name != "edgar"]
    assert {(k.hosts, k.contact_setting, k.rate_per_second, k.copies_by_title) for k in plain} == {
        ((), None, None, True)
    }
    assert {k.structured for k in plain} == {structured_tickers}


def test_every_contact_a_kind_asks_for_is_a_declared_setting() -> None:
    from scorer.config.settings import BY_NAME

    asked = {kind.contact_setting for kind in KINDS.values() if kind.contact_setting}
    assert asked == {"EDGAR_USER_AGENT"} and asked <= set(BY_NAME)


def test_the_registry_and_its_entries_cannot_change_at_run_time() -> None:
    with pytest.raises(TypeError):
        KINDS["rumour"] = FeedKind("rumour")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        EDGAR.rate_per_second = 100  # type: ignore[misc]


@pytest.mark.parametrize(
    ("host", "owned"),
    [
        ("sec.gov", True),
        ("www.sec.gov", True),
        ("WWW.SEC.GOV", True),
        ("efts.sec.gov", True),
        ("notsec.gov", False),
        ("sec.gov.example.com", False),
        ("127.0.0.1", False),
    ],
)
def test_edgar_owns_sec_gov_and_its_subdomains_only(host: str, owned: bool) -> None:
    assert EDGAR.owns(host) is owned


def test_a_feed_follows_its_hosts_kind_else_the_kind_it_was_declared() -> None:
    assert kind_of("market", "www.sec.gov") is EDGAR
    assert kind_of("ticker", "www.sec.gov") is EDGAR  # a company's filings feed
    assert kind_of("edgar", "127.0.0.1") is EDGAR  # a mirror, or a test server
    assert kind_of("wire", "www.globenewswire.com") is KINDS["wire"]
    assert FeedSpec("https://www.sec.gov/x", ticker="WMT").rules is EDGAR
    with pytest.raises(KeyError):
        kind_of("rumour", "example.com")


def test_a_feed_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=f"kind must be one of {', '.join(KINDS)}"):
        FeedSpec("https://example.com/rss", kind="rumour")


def test_edgar_reads_the_filers_cik_from_the_title_or_the_company_feed() -> None:
    entry = {"title": "8-K - Walmart Inc. (0000104169) (Filer)", "nasdaq_tickers": "WMT"}
    assert edgar_tags(entry, {}) == (["WMT"], [104169])
    assert structured_tickers(entry, {}) == (["WMT"], [])
    assert edgar_tags({"title": "8-K - Current report"}, {"cik": " 0000104169 "}) == ([], [104169])
    person = {"title": "4 - Walton Family Holdings Trust (0001678632) (Reporting)"}
    assert edgar_tags(person, {}) == ([], [])
