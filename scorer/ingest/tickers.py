"""Tickers: what one looks like, parsing lists of them, cashtags and exchange
mentions, the symbol directory (companies, their names, aliases, ambiguous names and
brokers), and the vocabulary of tags (``Tag``, ``REASONS``). How an item is tagged is
``scorer.ingest.tagging``.

Config, the API and the feed parser all use this module, so none of them needs to
import another's dependencies (the gunicorn master reads settings without
importing feedparser or requests).
"""

from __future__ import annotations

import csv
import functools
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TICKER_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
# Not glued to a word or another "$" and ending at a word boundary, so "$AAPLs" and
# "US$5" never match; a trailing "." or "-" is punctuation, stripped after matching.
CASHTAG_RE = re.compile(r"(?<![A-Za-z0-9$])\$([A-Z][A-Z0-9.\-]{0,9})(?![A-Za-z0-9])")
# "NASDAQ: AAPL", "(NYSE:XOM)", "Nasdaq-GS: X", "NYSE American: Y". The exchange in
# any case, the ticker in capitals only: "Nasdaq: Tech stocks" names no ticker.
EXCHANGE_RE = re.compile(
    r"(?<![A-Za-z])(?i:nasdaq(?:[- ]?(?:gs|gm|cm|global select|global market|capital market))?"
    r"|nyse(?:[- ](?:american|arca|mkt))?|amex|cboe|otc(?:qx|qb)?|tsxv?)"
    r"\s*:\s*([A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?)(?![A-Za-z0-9])"
)
DATA = Path(__file__).parent / "data"
# Tickers that are English words: never matched as a bare word, nor as a name.
ENGLISH_TICKERS = frozenset(
    [
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
        "BIG",
        "CASH",
        "CAR",
        "FUN",
        "HAS",
        "HE",
    ]
)
REASONS = ("feed", "structured", "exchange", "cashtag", "name")  # most trusted first


def parse_ticker(raw: str) -> str:
    """One ticker, upper-cased; ValueError naming it if it is malformed."""
    value = raw.strip().upper()
    if not TICKER_RE.match(value):
        raise ValueError(f"malformed ticker {value[:20]!r}")
    return value


def parse_tickers(raw: str) -> list[str]:
    """A comma-separated list, upper-cased, in order, without repeats or empty entries.

    ValueError names every malformed entry.
    """
    tickers: dict[str, None] = {}  # ordered set
    bad = []
    for part in raw.split(","):
        if not part.strip():
            continue
        try:
            tickers[parse_ticker(part)] = None
        except ValueError:
            bad.append(part.strip()[:20])
    if bad:
        raise ValueError(f"malformed tickers: {', '.join(repr(b) for b in bad)}")
    return list(tickers)


def cashtags(text: str) -> set[str]:
    """Every cashtag in ``text`` ($AAPL, $BRK.B), watched or not."""
    return {tag.rstrip(".-") for tag in CASHTAG_RE.findall(text)}


def exchange_mentions(text: str) -> set[str]:
    """Every exchange-qualified ticker in ``text`` ("NASDAQ: AAPL", "(NYSE:XOM)")."""
    return {tag.rstrip(".-") for tag in EXCHANGE_RE.findall(text)}


def canon(ticker: str) -> str:
    # The SEC writes share classes "BRK-B", Nasdaq and most feeds "BRK.B".
    return ticker.replace(".", "-")


_SUFFIXES = frozenset(
    [
        "INC",
        "INCORPORATED",
        "CORP",
        "CORPORATION",
        "CO",
        "COMPANY",
        "COMPANIES",
        "LTD",
        "LIMITED",
        "PLC",
        "LLC",
        "LP",
        "NV",
        "SA",
        "AG",
        "SE",
        "HOLDINGS",
        "HOLDING",
        "GROUP",
        "COM",
        "THE",
    ]
)
SMALL_WORDS = frozenset({"OF", "AND", "THE", "FOR", "DE"})


def normalise_company_name(conformed: str) -> str:
    """The name a headline uses, from the SEC's conformed name:
    "MICROSOFT CORP" -> "Microsoft", "HOME DEPOT, INC." -> "Home Depot",
    "KEYCORP /NEW/" -> "Keycorp", "AMAZON COM INC" -> "Amazon"."""
    name = re.sub(r"\s*/[A-Z]{2,}/?\s*$", "", conformed.strip())  # "/DE/", "/NEW/"
    words = [w for w in re.split(r"[\s,]+", name) if w]
    while len(words) > 1 and (words[-1].upper().replace(".", "") in _SUFFIXES or words[-1] == "&"):
        words.pop()
    if words and words[0].upper() == "THE" and len(words) > 1:
        words.pop(0)
    if " ".join(words).isupper():
        # Conformed names shout; keep short or symbol-bearing words ("IBM", "AT&T", "3M").
        words = [
            w.lower()
            if w in SMALL_WORDS
            else w
            if len(w) <= 3 or not w.replace("-", "").isalpha()
            else "-".join(part.capitalize() for part in w.split("-"))
            for w in words
        ]
    return " ".join(words).strip(" .,")


@dataclass(frozen=True)
class Company:
    """One row of the symbol directory."""

    ticker: str
    cik: int
    exchange: str
    name: str  # normalised: "Microsoft"


@dataclass(eq=False)  # hashed by identity: taggers are cached per directory
class Directory:
    """Ticker -> company, CIK -> tickers, and the names people write for each company.

    Only what tagging needs is kept: ~10k small rows (a few MB).
    """

    companies: dict[str, Company]  # by canonical ticker (BRK-B)
    aliases: dict[str, list[str]] = field(default_factory=dict)  # canonical ticker -> names
    ambiguous: frozenset[str] = frozenset()  # casefolded names needing corroboration
    brokers: frozenset[str] = frozenset()  # canonical tickers of banks that rate stocks
    by_cik: dict[int, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_cik = {}
        for company in self.companies.values():
            self.by_cik.setdefault(company.cik, []).append(company.ticker)

    @classmethod
    def load(
        cls, symbols: Path = DATA / "symbols.csv", names: Path = DATA / "names.toml"
    ) -> Directory:
        """Read the shipped files (see scorer/ingest/data/SOURCE.md)."""
        with symbols.open(newline="", encoding="utf-8") as f:
            companies = {
                row["ticker"]: Company(row["ticker"], int(row["cik"]), row["exchange"], row["name"])
                for row in csv.DictReader(f)
            }
        extra = tomllib.loads(names.read_text(encoding="utf-8"))
        aliases: dict[str, list[str]] = {}
        for name, ticker in extra.get("aliases", {}).items():
            aliases.setdefault(canon(ticker), []).append(name)
        ambiguous = frozenset(n.casefold() for n in extra.get("ambiguous", {}).get("names", []))
        brokers = frozenset(canon(t) for t in extra.get("brokers", {}).get("tickers", []))
        return cls(companies, aliases, ambiguous, brokers)

    def get(self, ticker: str) -> Company | None:
        return self.companies.get(canon(ticker))

    def tickers_for_cik(self, cik: int) -> list[str]:
        """Every listed class of the company with this CIK (GOOGL and GOOG)."""
        return self.by_cik.get(cik, [])

    def names_for(self, ticker: str) -> list[str]:
        """The company's normalised name and aliases of any ticker sharing its CIK."""
        company = self.get(ticker)
        if company is None:
            return list(self.aliases.get(canon(ticker), []))
        names = [company.name] if len(company.name) >= 3 else []
        for sibling in self.tickers_for_cik(company.cik):
            names += self.aliases.get(sibling, [])
        return names

    def unknown(self, watchlist: Iterable[str]) -> list[str]:
        """Watchlist tickers the directory does not list (tagged by feed, structure,
        exchange or cashtag only, never by name)."""
        return sorted(t for t in watchlist if self.get(t) is None)


@functools.cache
def default_directory() -> Directory:
    """The shipped directory, read once on first use."""
    return Directory.load()


@dataclass(frozen=True)
class Tag:
    """One watchlisted ticker an item is about."""

    ticker: str
    relevance: float  # 0..1: how central the ticker is to the item
    tagged_by: str  # one of REASONS: the most trusted rule that found it


def tags_of(
    tickers: Iterable[str], relevance: float = 1.0, tagged_by: str = "feed"
) -> tuple[Tag, ...]:
    """Tags for tickers known by other means (tests, benchmarks, a per-ticker feed)."""
    return tuple(Tag(t, relevance, tagged_by) for t in sorted(tickers))


def parse_listing(term: str) -> str | None:
    """A ticker from "Nasdaq:ACME" / "NYSE: XOM" (GlobeNewswire's stock categories)."""
    exchange, sep, ticker = term.rpartition(":")
    ticker = ticker.strip().upper()
    if not sep or not exchange.strip() or not TICKER_RE.match(ticker):
        return None
    return ticker


def tickers_in_list(raw: str) -> list[str]:
    """Tickers from Nasdaq's ``<nasdaq:tickers>`` ("AAPL,MSFT"), malformed ones skipped."""
    out = []
    for part in re.split(r"[,\s;]+", raw or ""):
        part = part.split(":")[-1].strip().upper()
        if part and TICKER_RE.match(part):
            out.append(part)
    return out
