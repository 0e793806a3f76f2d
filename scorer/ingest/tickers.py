"""Tickers: what one looks like, parsing lists of them, the symbol directory, and
tagging a news item with the watchlisted tickers it is about (with a relevance).

Config, the API and the feed parser all use this module, so none of them needs to
import another's dependencies (the gunicorn master reads settings without
importing feedparser or requests).

Tagging, in the order of trust (README "Tagging"):

1. ``feed``: the feed's own ticker (a per-ticker feed);
2. ``structured``: tickers the item carries as data (Nasdaq's ``<nasdaq:tickers>``,
   GlobeNewswire's stock categories, an EDGAR filer's CIK);
3. ``exchange``: exchange-qualified mentions, ``NASDAQ: AAPL``, ``(NYSE:XOM)``;
4. ``cashtag``: ``$AAPL``;
5. ``name``: the company's name from the symbol directory or its aliases
   ("Microsoft", "Google").

A bare ticker in text never counts: ``A``, ``IT``, ``ALL``, ``ON``... are tickers
and English alike.
"""

from __future__ import annotations

import csv
import functools
import math
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

TICKER_RE = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
# Not glued to a word or another "$" and ending at a word boundary, so "$AAPLs" and
# "US$5" never match; a trailing "." or "-" is punctuation, stripped after matching.
_CASHTAG = re.compile(r"(?<![A-Za-z0-9$])\$([A-Z][A-Z0-9.\-]{0,9})(?![A-Za-z0-9])")
# "NASDAQ: AAPL", "(NYSE:XOM)", "Nasdaq-GS: X", "NYSE American: Y". The exchange in
# any case, the ticker in capitals only: "Nasdaq: Tech stocks" names no ticker.
_EXCHANGE = re.compile(
    r"(?<![A-Za-z])(?i:nasdaq(?:[- ]?(?:gs|gm|cm|global select|global market|capital market))?"
    r"|nyse(?:[- ](?:american|arca|mkt))?|amex|cboe|otc(?:qx|qb)?|tsxv?)"
    r"\s*:\s*([A-Z][A-Z0-9]{0,5}(?:[.\-][A-Z0-9]{1,3})?)(?![A-Za-z0-9])"
)
# Words after an ambiguous name that show it is the company ("Target Corp", "Visa shares").
_CORROBORATION = re.compile(
    r"^(?:['’]s)?\s+(?:Inc|Corp|Corporation|Co|Company|Holdings|shares|stock|stocks"
    r"|earnings|revenue|CEO)\b|^\s*\((?:[A-Za-z -]+:\s*)?[A-Z][A-Z0-9.\-]{0,9}\)"
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
    return {tag.rstrip(".-") for tag in _CASHTAG.findall(text)}


def exchange_mentions(text: str) -> set[str]:
    """Every exchange-qualified ticker in ``text`` ("NASDAQ: AAPL", "(NYSE:XOM)")."""
    return {tag.rstrip(".-") for tag in _EXCHANGE.findall(text)}


def tag_tickers(text: str, watchlist: frozenset[str], feed_ticker: str | None) -> frozenset[str]:
    """feed_ticker plus watchlisted cashtags ($AAPL, $BRK.B). Bare words never count:
    "A", "IT" or "ALL" are tickers and English alike."""
    found = cashtags(text) & watchlist
    return frozenset(found | {feed_ticker}) if feed_ticker else frozenset(found)


def _canon(ticker: str) -> str:
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
_SMALL = frozenset({"OF", "AND", "THE", "FOR", "DE"})


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
            if w in _SMALL
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
    by_cik: dict[int, list[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.by_cik = {}
        for company in self.companies.values():
            self.by_cik.setdefault(company.cik, []).append(company.ticker)

    @classmethod
    def load(
        cls, symbols: Path = DATA / "symbols.csv", names: Path = DATA / "names.toml"
    ) -> Directory:
        """Read the shipped files (see scorer/data/SOURCE.md)."""
        with symbols.open(newline="", encoding="utf-8") as f:
            companies = {
                row["ticker"]: Company(row["ticker"], int(row["cik"]), row["exchange"], row["name"])
                for row in csv.DictReader(f)
            }
        extra = tomllib.loads(names.read_text(encoding="utf-8"))
        aliases: dict[str, list[str]] = {}
        for name, ticker in extra.get("aliases", {}).items():
            aliases.setdefault(_canon(ticker), []).append(name)
        ambiguous = frozenset(n.casefold() for n in extra.get("ambiguous", {}).get("names", []))
        return cls(companies, aliases, ambiguous)

    def get(self, ticker: str) -> Company | None:
        return self.companies.get(_canon(ticker))

    def tickers_for_cik(self, cik: int) -> list[str]:
        """Every listed class of the company with this CIK (GOOGL and GOOG)."""
        return self.by_cik.get(cik, [])

    def names_for(self, ticker: str) -> list[str]:
        """The company's normalised name and aliases of any ticker sharing its CIK."""
        company = self.get(ticker)
        if company is None:
            return list(self.aliases.get(_canon(ticker), []))
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


@dataclass(frozen=True)
class Mention:
    """Where a text names a watched ticker."""

    ticker: str
    start: int
    end: int
    reason: str  # "exchange", "cashtag" or "name"


@dataclass
class _Evidence:
    reasons: set[str] = field(default_factory=set)
    in_title: bool = False
    in_summary: bool = False


def _key(text: str) -> str:
    return " ".join(text.replace("-", " ").split()).casefold()


class Tagger:
    """Tags items with the watchlist; built once per watchlist (names compiled once)."""

    def __init__(self, watchlist: Iterable[str], directory: Directory) -> None:
        self.watchlist = frozenset(watchlist)
        self.directory = directory
        self._by_canon = {_canon(t): t for t in self.watchlist}
        self._names: dict[str, str] = {}  # casefolded name -> watchlist ticker
        # Short one-word directory names ("Nov", "Here", "News") are words more often
        # than companies: like the curated ambiguous names, they need corroboration.
        # Aliases are curated, so "Nike" or "AT&T" written there need none.
        self._ambiguous = set(directory.ambiguous)
        for ticker in sorted(self.watchlist):
            aliases = {_key(a) for a in directory.aliases.get(_canon(ticker), [])}
            for name in directory.names_for(ticker):
                key = _key(name)
                if len(name) < 2 or name.upper() in ENGLISH_TICKERS:
                    continue
                self._names.setdefault(key, ticker)
                if " " not in key and len(key) <= 4 and key not in aliases:
                    self._ambiguous.add(key)
        words = sorted(self._names, key=len, reverse=True)
        alternatives = [r"[\s\-]+".join(re.escape(w) for w in name.split()) for name in words]
        self._name_re = (
            re.compile(r"(?<![\w&])(?:" + "|".join(alternatives) + r")(?![\w&])", re.IGNORECASE)
            if alternatives
            else None
        )

    def mentions(self, text: str) -> list[Mention]:
        """Watched tickers named in ``text`` (exchange mention, cashtag, name), with
        their offsets, in order."""
        found = [
            Mention(watched, m.start(), m.end(), reason)
            for reason, regex in (("exchange", _EXCHANGE), ("cashtag", _CASHTAG))
            for m in regex.finditer(text)
            if (watched := self._watched(m.group(1).rstrip(".-")))
        ]
        if self._name_re is not None:
            for m in self._name_re.finditer(text):
                names = self.names_in(text[m.start() : m.end() + 40])
                key = _key(m.group(0))
                if self._names.get(key) in names:
                    found.append(Mention(self._names[key], m.start(), m.end(), "name"))
        return sorted(found, key=lambda mention: (mention.start, mention.end))

    def _watched(self, ticker: str) -> str | None:
        return self._by_canon.get(_canon(ticker))

    def names_in(self, text: str) -> set[str]:
        """Watchlist tickers named in ``text`` by company name (capitalised, and for
        ambiguous names like "Target" corroborated by "Corp", "shares", "(TGT)"...)."""
        found: set[str] = set()
        if self._name_re is None:
            return found
        for match in self._name_re.finditer(text):
            words = match.group(0).replace("-", " ").split()
            # "apple pie" is no company: every word of a name is capitalised in text.
            if not all(
                w[0].isupper() or not w[0].isalpha() or (i and w.upper() in _SMALL)
                for i, w in enumerate(words)
            ):
                continue
            key = _key(match.group(0))
            if key in self._ambiguous and not _CORROBORATION.match(
                text[match.end() : match.end() + 40]
            ):
                continue
            found.add(self._names[key])
        return found

    def tag(
        self,
        title: str,
        summary: str,
        *,
        feed_ticker: str | None = None,
        structured: Sequence[str] = (),
        ciks: Sequence[int] = (),
    ) -> tuple[Tag, ...]:
        """The watchlisted tickers this item is about, most relevant first."""
        evidence: dict[str, _Evidence] = {}
        others: set[str] = set()  # unwatched tickers named: they share the attention

        def note(ticker: str, reason: str, title_hit: bool, summary_hit: bool) -> None:
            watched = self._watched(ticker)
            if watched is None:
                others.add(_canon(ticker))
                return
            ev = evidence.setdefault(watched, _Evidence())
            ev.reasons.add(reason)
            ev.in_title |= title_hit
            ev.in_summary |= summary_hit

        for ticker in structured:
            note(ticker, "structured", False, False)
        for cik in ciks:
            for ticker in self.directory.tickers_for_cik(cik):
                note(ticker, "structured", False, False)
        for in_title, text in ((True, title), (False, summary)):
            for reason, found in (
                ("exchange", exchange_mentions(text)),
                ("cashtag", cashtags(text)),
                ("name", self.names_in(text)),
            ):
                for ticker in found:
                    note(ticker, reason, in_title, not in_title)
        if feed_ticker:
            note(feed_ticker, "feed", False, False)
        # How many companies the item names itself (a feed's ticker is not named by it).
        named = len({t for t, ev in evidence.items() if ev.reasons - {"feed"}} | others) or 1
        tags = [
            Tag(t, _relevance(ev, t == feed_ticker, named), _first_reason(ev.reasons))
            for t, ev in evidence.items()
        ]
        return tuple(sorted(tags, key=lambda tag: (-tag.relevance, tag.ticker)))


def _first_reason(reasons: set[str]) -> str:
    return next(r for r in REASONS if r in reasons)


def _relevance(ev: _Evidence, own_feed: bool, named: int) -> float:
    """Headline over summary over data only; the only company named over one of
    several (1/sqrt(n): one of five counts 0.45); a feed's own ticker at least 0.9."""
    if ev.in_title:
        place = 1.0
    elif "structured" in ev.reasons:
        place = 0.7
    elif ev.in_summary:
        place = 0.6
    else:
        place = 0.0
    value = place / math.sqrt(named)
    if own_feed:
        value = max(value, 1.0 if ev.in_title else 0.9)
    return round(min(max(value, 0.0), 1.0), 3)


@functools.lru_cache(maxsize=8)
def tagger_for(watchlist: frozenset[str], directory: Directory | None = None) -> Tagger:
    """A tagger over the shipped directory, built once per watchlist."""
    return Tagger(watchlist, directory or default_directory())


def unknown_tickers(watchlist: Iterable[str]) -> list[str]:
    """Watchlist tickers the shipped directory does not list."""
    return default_directory().unknown(watchlist)


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
