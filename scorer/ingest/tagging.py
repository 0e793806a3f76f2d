"""Tagging: which watched tickers a news item is about, where its text names them, and
how relevant each is. The rules (docs/feeds-and-tagging.md, "How tagging decides"):

Evidence, most trusted first (``REASONS``):

1. ``feed``: the feed's own ticker (a per-ticker feed);
2. ``structured``: tickers the item carries as data (Nasdaq's ``<nasdaq:tickers>``,
   GlobeNewswire's stock categories, an EDGAR filer's CIK);
3. ``exchange``: exchange-qualified mentions, ``NASDAQ: AAPL``, ``(NYSE:XOM)``;
4. ``cashtag``: ``$AAPL``;
5. ``name``: the company's name from the symbol directory or its aliases
   ("Microsoft", "Google", "GM"), matched only when:

   - every word is capitalised ("apple pie" is no company), and a name written in
     capitals ("GM", "HP", "IBM") is matched in capitals only;
   - no negative context says it is something else (``data/homonyms.toml``: a person,
     "Harrison Ford"; another organisation, "Ford Foundation", "Merck KGaA"; a place
     or thing, "the Amazon rainforest", "the Delta variant");
   - an ambiguous name ("Target", "Visa", "Oracle": ``names.toml``, and any short
     one-word directory name) is corroborated: a corporate word or a market verb right
     after it in any case ("Target Corp", "Oracle Stock Climbs", "Visa rises"), a
     corporate act or a rating in the infinitive ("Target To Cut Jobs", "cuts Target
     to neutral"), its ticker in brackets ("Gap (GAP)"), a place in a list of names
     that are companies ("Amazon, Walmart and Target"), or stronger evidence for the
     same ticker in the item (its feed, data, a cashtag or exchange mention);
   - it is not a broker acting on another company ("Goldman Sachs downgrades Apple",
     "Apple upgraded at Morgan Stanley"): that news is about the rated company.

A bare ticker in text never counts: ``A``, ``IT``, ``ALL``, ``ON``... are tickers and
English alike.
"""

from __future__ import annotations

import functools
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scorer.ingest.tickers import (
    CASHTAG_RE,
    DATA,
    ENGLISH_TICKERS,
    EXCHANGE_RE,
    REASONS,
    SMALL_WORDS,
    Directory,
    Tag,
    canon,
    cashtags,
    default_directory,
    exchange_mentions,
)

# Relevance of a per-ticker feed's item that never names the feed's ticker: below a
# summary mention (0.6), so ``min_relevance`` can drop it and roll-ups weigh it little.
FEED_ONLY_RELEVANCE = 0.2

# Words right after an ambiguous name that show it is the company, in any case
# ("Target Corp", "Visa shares", "Oracle Stock Climbs", "Target's earnings").
_CORPORATE = (
    r"Inc|Corp|Corporation|Co|Company|Holdings|shares?|stocks?|earnings|revenue|sales|profit"
    r"|results|guidance|outlook|forecast|CEO|CFO|investors|shareholders|dividend|buyback"
)
# Market verbs right after an ambiguous name: "Oracle climbs", "Target Tumbles".
_MARKET_VERBS = (
    r"rises|rose|climbs|jumps|gains|soars|surges|rallies|falls|fell|drops|slides|slumps"
    r"|tumbles|sinks|plunges|dips|beats|misses|tops|raises|cuts|lifts|lowers|reports"
    r"|posts|forecasts|warns|sees|expects|plans|agrees|buys|sells|hires|names|files"
    r"|announces|launches|upgraded|downgraded|slashes|boosts|trims"
)
# A corporate act in the infinitive ("Target To Cut 1,800 Jobs", "Citi to buy") or a
# rating it was moved to ("Citi cuts Target to neutral").
_ACTS = (
    r"cut|buy|acquire|sell|close|open|split|spin|pay|raise|report|hire|invest|merge"
    r"|lay\s+off|buy\s+back|exit|shut|expand|build|launch|sue|settle|appeal|restructure"
)
_RATINGS = (
    r"buy|sell|hold|neutral|overweight|underweight|outperform|underperform"
    r"|equal[\s-]weight|market[\s-]perform|sector[\s-]perform|peer[\s-]perform|strong\s+buy"
)
_CORROBORATION = re.compile(
    rf"^(?:['’]s)?\s+(?i:{_CORPORATE})\b|^\s+(?i:{_MARKET_VERBS})\b"
    rf"|^\s+(?i:to\s+(?:{_ACTS}|{_RATINGS}))\b"
    r"|^\s*\((?:[A-Za-z -]+:\s*)?[A-Z][A-Z0-9.\-]{0,9}\)"
)
# Between two names of one list ("Amazon, Walmart and Target"): a company beside a
# company is a company.
_LIST_JOINT = re.compile(r"^(?:\s*,\s*|\s*,?\s+(?:and|or|&)\s+)$", re.IGNORECASE)
# A broker acting on another company: the broker's name right before a rating action
# ("Goldman Sachs downgrades", "JPMorgan analyst upgrades", "Citi raises ... target"),
# or right after "upgraded/downgraded/initiated ... at|by".
_RATING = r"upgrades|downgrades|initiates|reiterates|resumes|starts|assumes|reinstates"
_TARGET_MOVE = r"raises|lifts|boosts|cuts|lowers|trims|slashes|hikes"
_BROKER_ACTS = re.compile(
    rf"^(?:['’]s?)?(?:\s+analysts?)?\s+(?i:(?:{_RATING})\b|(?:{_TARGET_MOVE})\b(?=.{{0,60}}"
    r"\b(?:price\s+target|target|rating|PT)\b))"
)
_RATED_AT = re.compile(
    r"(?i:\b(?:upgraded|downgraded|initiated|reiterated|rated|started|raised|cut|lowered)"
    r"\b[^.;]{0,40}?\b(?:at|by)\s+)$"
)


@dataclass(frozen=True)
class Homonyms:
    """Negative contexts: what a name means when it is not the company
    (``data/homonyms.toml``, with its provenance)."""

    given_names: frozenset[str] = frozenset()  # casefolded; "Harrison" before "Ford"
    after_any: frozenset[str] = frozenset()  # "Foundation" after any one-word name
    after: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> phrases
    before: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DATA / "homonyms.toml") -> Homonyms:
        data = tomllib.loads(path.read_text(encoding="utf-8"))

        def phrases(table: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
            return {_key(k): tuple(p.casefold() for p in v) for k, v in table.items()}

        return cls(
            given_names=frozenset(n.casefold() for n in data["people"]["given_names"]),
            after_any=frozenset(w.casefold() for w in data["organisations"]["after_any_name"]),
            after=phrases(data.get("after", {})),
            before=phrases(data.get("before", {})),
        )

    def excludes(self, key: str, before: str, after: str) -> bool:
        """Whether the text around a matched name ``key`` says it is not the company."""
        following = after.casefold().lstrip()
        preceding = before.casefold().rstrip()
        if any(_starts_with_words(following, p) for p in self.after.get(key, ())):
            return True
        if any(_ends_with_words(preceding, p) for p in self.before.get(key, ())):
            return True
        if " " in key:
            return False  # "Walt Disney", "Goldman Sachs": a full name is the company's
        word = re.match(r"[\w&.-]+", following)
        if word and word.group(0).rstrip(".") in self.after_any:
            return True  # "Ford Foundation", "Merck KGaA"
        last = re.search(r"([A-Z][a-z]+)\.?\s*$", before)
        return bool(last and last.group(1).casefold() in self.given_names)  # "Harrison Ford"


def _starts_with_words(text: str, phrase: str) -> bool:
    return text.startswith(phrase) and (len(text) == len(phrase) or not text[len(phrase)].isalnum())


def _ends_with_words(text: str, phrase: str) -> bool:
    at = len(text) - len(phrase)
    return text.endswith(phrase) and (at == 0 or not text[at - 1].isalnum())


@functools.cache
def default_homonyms() -> Homonyms:
    """The shipped negative contexts, read once on first use."""
    return Homonyms.load()


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

    def __init__(
        self,
        watchlist: Iterable[str],
        directory: Directory,
        homonyms: Homonyms | None = None,
    ) -> None:
        self.watchlist = frozenset(watchlist)
        self.directory = directory
        self.homonyms = homonyms or default_homonyms()
        self._by_canon = {canon(t): t for t in self.watchlist}
        self._names: dict[str, str] = {}  # casefolded name -> watchlist ticker
        self._capitals: set[str] = set()  # names matched in capitals only: "GM", "IBM"
        # Short one-word directory names ("Nov", "Here", "News") are words more often
        # than companies: like the curated ambiguous names, they need corroboration.
        # Aliases are curated, so "Nike" or "AT&T" written there need none.
        self._ambiguous = set(directory.ambiguous)
        self._brokers = {t for t in self.watchlist if canon(t) in directory.brokers}
        for ticker in sorted(self.watchlist):
            aliases = {_key(a) for a in directory.aliases.get(canon(ticker), [])}
            for name in directory.names_for(ticker):
                key = _key(name)
                if len(name) < 2 or name.upper() in ENGLISH_TICKERS:
                    continue
                self._names.setdefault(key, ticker)
                if name.isupper() and key in aliases:
                    self._capitals.add(key)
                if " " not in key and len(key) <= 4 and key not in aliases:
                    self._ambiguous.add(key)
        words = sorted(self._names, key=len, reverse=True)
        alternatives = [r"[\s\-]+".join(re.escape(w) for w in name.split()) for name in words]
        self._name_re = (
            re.compile(r"(?<![\w&])(?:" + "|".join(alternatives) + r")(?![\w&])", re.IGNORECASE)
            if alternatives
            else None
        )

    def mentions(self, text: str, confirmed: Iterable[str] = ()) -> list[Mention]:
        """Watched tickers named in ``text`` (exchange mention, cashtag, name), with
        their offsets, in order. ``confirmed`` tickers have stronger evidence in the
        item, so their ambiguous names need no corroboration."""
        sure = set(confirmed)
        found = [
            Mention(watched, m.start(), m.end(), reason)
            for reason, regex in (("exchange", EXCHANGE_RE), ("cashtag", CASHTAG_RE))
            for m in regex.finditer(text)
            if (watched := self._watched(m.group(1).rstrip(".-")))
        ]
        sure |= {m.ticker for m in found}
        if self._name_re is not None:
            unsure = []  # ambiguous names without corroboration of their own
            for m in self._name_re.finditer(text):
                ticker = self._names[_key(m.group(0))]
                if self._rates_another(text, m, ticker):
                    continue
                verdict = self._is_company(text, m, ticker in sure)
                if verdict:
                    found.append(Mention(ticker, m.start(), m.end(), "name"))
                elif verdict is None:
                    unsure.append(Mention(ticker, m.start(), m.end(), "name"))
            found += _listed_with(text, unsure, found)
        return sorted(found, key=lambda mention: (mention.start, mention.end))

    def finder(
        self, confirmed: Iterable[str] = ()
    ) -> Callable[[str], list[tuple[str | None, int, int]]]:
        """``mentions`` as scoring takes them: text -> [(ticker, start, end)], with the
        item's tags as ``confirmed``; an unwatched company's cashtag or exchange mention
        ("$ZZZZ", "NYSE: ZZ") comes with ``None``: that clause is another company's."""
        sure = frozenset(confirmed)

        def find(text: str) -> list[tuple[str | None, int, int]]:
            found: list[tuple[str | None, int, int]] = [
                (m.ticker, m.start, m.end) for m in self.mentions(text, sure)
            ]
            taken = {(a, b) for _, a, b in found}
            others: list[tuple[str | None, int, int]] = [
                (None, m.start(), m.end())
                for regex in (EXCHANGE_RE, CASHTAG_RE)
                for m in regex.finditer(text)
                if (m.start(), m.end()) not in taken and not self._watched(m.group(1).rstrip(".-"))
            ]
            return sorted(found + others, key=lambda f: (f[1], f[2]))

        return find

    def _is_company(self, text: str, match: re.Match[str], sure: bool) -> bool | None:
        """True if the name here is the company's, False if it is not, None if it is an
        ambiguous name nothing around it corroborates (a list of companies may)."""
        written, key = match.group(0), _key(match.group(0))
        if key in self._capitals and written != written.upper():
            return False  # "Gm", "Hp": a name written in capitals is matched so
        words = written.replace("-", " ").split()
        if not all(
            w[0].isupper() or not w[0].isalpha() or (i and w.upper() in SMALL_WORDS)
            for i, w in enumerate(words)
        ):
            return False  # "apple pie": every word of a name is capitalised in text
        before, after = text[max(0, match.start() - 40) : match.start()], text[match.end() :]
        if self.homonyms.excludes(key, before, after[:40]):
            return False
        if sure or key not in self._ambiguous or _CORROBORATION.match(after[:80]):
            return True
        return None

    def _rates_another(self, text: str, match: re.Match[str], ticker: str) -> bool:
        """A broker's name as the actor of a rating on another company."""
        if ticker not in self._brokers:
            return False
        return bool(
            _BROKER_ACTS.match(text[match.end() : match.end() + 100])
            or _RATED_AT.search(text[max(0, match.start() - 60) : match.start()])
        )

    def _watched(self, ticker: str) -> str | None:
        return self._by_canon.get(canon(ticker))

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
                others.add(canon(ticker))
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
        if feed_ticker:
            note(feed_ticker, "feed", False, False)
        for text in (title, summary):
            for ticker in exchange_mentions(text) | cashtags(text):
                if self._watched(ticker) is None:
                    others.add(canon(ticker))
        confirmed = set(evidence)
        for in_title, text in ((True, title), (False, summary)):
            for mention in self.mentions(text, confirmed):
                note(mention.ticker, mention.reason, in_title, not in_title)
        # How many companies the item names itself (a feed's ticker is not named by it).
        named = len({t for t, ev in evidence.items() if ev.reasons - {"feed"}} | others) or 1
        tags = [
            Tag(t, _relevance(ev, t == feed_ticker, named), _first_reason(ev.reasons))
            for t, ev in evidence.items()
        ]
        return tuple(sorted(tags, key=lambda tag: (-tag.relevance, tag.ticker)))


def _listed_with(text: str, unsure: list[Mention], found: list[Mention]) -> list[Mention]:
    """The ``unsure`` names that stand in one list with a ``found`` name, or with one
    that is itself so listed: "Amazon, Walmart and Target battle for shoppers"."""
    sure, out = list(found), []
    grew = True
    while grew and unsure:
        grew = False
        for mention in list(unsure):
            if any(
                _LIST_JOINT.match(text[a.end : b.start])
                for a, b in ((m, mention) if m.end <= mention.start else (mention, m) for m in sure)
            ):
                unsure.remove(mention)
                sure.append(mention)
                out.append(mention)
                grew = True
    return out


def _first_reason(reasons: set[str]) -> str:
    return next(r for r in REASONS if r in reasons)


def _relevance(ev: _Evidence, own_feed: bool, named: int) -> float:
    """Headline over summary over data only; the only company named over one of
    several (1/sqrt(n): one of five counts 0.45). A feed's own ticker named in the
    headline counts 1.0, in the summary at least a summary mention; never named, it
    counts FEED_ONLY_RELEVANCE (the feed's other news: ETF lists, peers)."""
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
        value = 1.0 if ev.in_title else max(value, 0.6 if place else FEED_ONLY_RELEVANCE)
    return round(min(max(value, 0.0), 1.0), 3)


@functools.lru_cache(maxsize=8)
def tagger_for(watchlist: frozenset[str], directory: Directory | None = None) -> Tagger:
    """A tagger over the shipped directory, built once per watchlist."""
    return Tagger(watchlist, directory or default_directory())
