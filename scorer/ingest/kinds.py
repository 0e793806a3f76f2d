"""Feed kinds: everything that differs between kinds of feed, one registry entry each.

A kind says which hosts are its own (a feed there follows its rules however it was
declared: sec.gov is EDGAR), what fetching it asks for (a User-Agent naming a contact,
a request rate), and how its entries are tagged and told apart. Settings, fetching and
parsing ask ``kind_of``; none of them names a kind. Pure: no HTTP or feed library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from scorer.ingest.tickers import parse_listing, tickers_in_list

# What an entry carries as data: watchlist-style tickers, and SEC CIKs.
Structured = tuple[list[str], list[int]]


def structured_tickers(entry: Any, feed: Any) -> Structured:
    """Tickers an entry carries as data: Nasdaq's ``<nasdaq:tickers>``, GlobeNewswire's
    ``<category domain=".../rss/stock">Nasdaq:ACME</category>``. ``entry`` and ``feed``
    are feedparser's dicts."""
    tickers = tickers_in_list(entry.get("nasdaq_tickers") or "")
    for tag in entry.get("tags") or []:
        scheme = (tag.get("scheme") or "").lower()
        if scheme.rstrip("/").endswith(("/stock", "/ticker", "/tickers")):
            ticker = parse_listing(tag.get("term") or "")
            if ticker:
                tickers.append(ticker)
    return tickers, []


# EDGAR: "8-K - APPLE INC (0000320193) (Filer)"; "(Reporting)" rows name a person.
_EDGAR_TITLE = re.compile(r"\((\d{10})\)\s*\((?:Filer|Subject|Issuer|Filed by)\)")


def edgar_tags(entry: Any, feed: Any) -> Structured:
    """As ``structured_tickers``, plus the CIK of a filing's company: from the title
    (getcurrent's "(0000104169) (Issuer)") or a company feed's ``<cik>``."""
    tickers, _ = structured_tickers(entry, feed)
    ciks = [int(cik) for cik in _EDGAR_TITLE.findall(entry.get("title") or "")]
    if not ciks and str(feed.get("cik") or "").strip().isdigit():
        ciks.append(int(feed["cik"]))
    return tickers, ciks


@dataclass(frozen=True)
class FeedKind:
    """One kind of feed and the rules its feeds follow."""

    name: str
    # Domains (with their subdomains) whose feeds are of this kind whatever they were
    # declared as: a sec.gov URL in FEEDS gets EDGAR's rules without saying "edgar".
    hosts: tuple[str, ...] = ()
    # The setting holding the User-Agent, naming a contact, its servers require. Without
    # it, a configured feed of this kind is a start-up error and catalogue entries of
    # this kind are skipped (with a note).
    contact_setting: str | None = None
    rate_per_second: float | None = None  # requests per second per process, if limited
    structured: Callable[[Any, Any], Structured] = structured_tickers
    # False: each item is its own story even when another carries its title (a filing
    # has its accession number), so it is never merged as a syndicated copy.
    copies_by_title: bool = True

    def owns(self, host: str) -> bool:
        """Whether ``host`` is one of this kind's (or a subdomain of one)."""
        host = host.lower()
        return any(host == domain or host.endswith("." + domain) for domain in self.hosts)

    @property
    def where(self) -> str:
        """How errors name its servers: its first host, else its name."""
        return self.hosts[0] if self.hosts else self.name


EDGAR = FeedKind(
    "edgar",
    hosts=("sec.gov",),
    contact_setting="EDGAR_USER_AGENT",  # SEC: "declare your user agent" with an e-mail
    rate_per_second=10,  # SEC's fair-access limit, across all of a client's requests
    structured=edgar_tags,
    copies_by_title=False,
)

# In the order they are listed in errors and docs. Read-only: it is shared by every
# thread and Settings relies on it not changing under it.
KINDS: Mapping[str, FeedKind] = MappingProxyType(
    {kind.name: kind for kind in (FeedKind("market"), FeedKind("ticker"), FeedKind("wire"), EDGAR)}
)


def kind_of(declared: str, host: str) -> FeedKind:
    """The kind whose rules a feed follows: the kind owning its host, else the one it
    was declared as (KeyError if that is no kind)."""
    for kind in KINDS.values():
        if kind.owns(host):
            return kind
    return KINDS[declared]
