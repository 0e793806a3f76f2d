"""What is scored, and what each ticker's score is made of: an article cut into
sentences and clauses (segments), and the segments that are about each ticker.

Pure: plain strings in, offsets out. The rules (docs/feeds-and-tagging.md, "Ticker-level
scores"):

1. **Sentences.** The headline is one sentence; the summary is split at ``.``, ``!`` or
   ``?`` followed by a space and a capital, digit or quote. A summary sentence that
   repeats the headline is dropped; at most ``MAX_SENTENCES`` are kept.
2. **Clauses.** A sentence that names two or more watched tickers is cut where it
   joins two pieces of news: at ``;``, at ``while``, ``whereas``, ``but``,
   ``although``, ``even as`` and ``yet`` (with or without a comma before), at ``, as``,
   and at a bare ``as`` followed by a capitalised word ("Intel falls as AMD gains";
   "rose as much as 5%" stays whole). The connective itself belongs to neither side.
   A sentence about one company stays whole: its clauses would all be that company's,
   and the model reads a whole sentence better than its pieces (and at no extra cost).
   Each piece, or whole sentence, is a *segment*.
3. **Whose segment.** A segment that mentions a ticker (a name or alias, a cashtag,
   an exchange mention) is that ticker's evidence; one with an unwatched company's
   cashtag or exchange mention ("$ZZZZ", "NYSE: ZZ") is nobody's. A segment that
   mentions none continues the segment before it in the same sentence ("Apple rose,
   as the company beat estimates"). A sentence that mentions no company at all counts for the one
   company of a single-company story; in a story that names several, it counts for
   none of them (it stays in the article-level score).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

MAX_SENTENCES = 8  # bounds the cost of a long summary; leads carry the news
HEADLINE, SUMMARY = "headline", "summary"

# A sentence ends at . ! or ? followed by space and a capital, digit or quote. Not perfect
# (abbreviations like "Inc. Shares" split), but FinBERT averages over sentences, so an
# extra split costs little; nltk's punkt would add a download at boot for small gain.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9$])")
# Where one sentence joins two pieces of news: the connective (group 0) is dropped.
_CONNECTIVE = re.compile(
    r"\s*;\s*"
    r"|,?\s+(?:while|whereas|but|although|even\s+as|yet)\s+"
    r"|,\s+as\s+"
    r"|\s+as\s+(?=[A-Z$])",
    re.IGNORECASE,
)
# "as" is only a joint before a capital in its own case: "as AMD gains", not "as Much".
_BARE_AS = re.compile(r"\s+as\s+$", re.IGNORECASE)
_MIN_CLAUSE = 3  # characters: "but" between two words is a joint, "but ok" a fragment


@dataclass(frozen=True)
class Segment:
    """A piece of an article scored on its own: a clause of one sentence."""

    where: str  # HEADLINE or SUMMARY
    start: int  # offsets into the article's title or summary, as stored
    end: int
    text: str
    sentence: int  # which sentence of the article (0 = the headline, if any)


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``, stripped."""
    spans, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [_strip(text, a, b) for a, b in spans if text[a:b].strip()]


def split_clauses(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """(start, end) of each clause of the sentence ``text[start:end]`` (rule 2)."""
    end = len(text) if end is None else end
    spans, begin = [], start
    for match in _CONNECTIVE.finditer(text, start, end):
        if _BARE_AS.match(match.group(0)) and not text[match.end() : match.end() + 1].isupper():
            continue  # a bare "as" before a capital only (case-insensitive match above)
        left = _strip(text, begin, match.start())
        if left[1] - left[0] >= _MIN_CLAUSE and end - match.end() >= _MIN_CLAUSE:
            spans.append(left)
            begin = match.end()
    spans.append(_strip(text, begin, end))
    return [span for span in spans if span[1] > span[0]]


# Which sentences to cut into clauses: (where, start, end) -> bool. None: every one.
Splits = Callable[[str, int, int], bool]


def article_segments(title: str, summary: str, split: Splits | None = None) -> list[Segment]:
    """The segments to score: the headline's, then the summary's (rule 1); a sentence
    is cut into clauses (rule 2) where ``split`` says so, by default always."""
    sentences: list[tuple[str, int, int]] = []
    head = title.strip()
    if head:
        sentences.append((HEADLINE, *_strip(title, 0, len(title))))
    for a, b in split_sentences(summary):
        if summary[a:b].rstrip(".") != head.rstrip("."):
            sentences.append((SUMMARY, a, b))
    segments = []
    for number, (where, a, b) in enumerate(sentences[:MAX_SENTENCES]):
        text = title if where == HEADLINE else summary
        pieces = split_clauses(text, a, b) if split is None or split(where, a, b) else [(a, b)]
        for c, d in pieces:
            segments.append(Segment(where, c, d, text[c:d], number))
    return segments


def texts_of(title: str, summary: str) -> list[str]:
    """What the model is given for one article of one company: its sentences."""
    return [s.text for s in article_segments(title, summary, lambda *_: False)]


def evidence(
    segments: Sequence[Segment], mentions: Sequence[frozenset[str | None]]
) -> dict[str, list[int]]:
    """Per ticker, the indexes of the segments about it (rule 3). ``mentions[i]`` are
    the tickers segment ``i`` names; ``None`` among them is an unwatched company."""
    named = set().union(*mentions) - {None} if mentions else set()
    sentences_with_names = {s.sentence for s, m in zip(segments, mentions, strict=True) if m}
    out: dict[str, list[int]] = {}
    previous: frozenset[str | None] = frozenset()
    for i, (segment, found) in enumerate(zip(segments, mentions, strict=True)):
        if i == 0 or segment.sentence != segments[i - 1].sentence:
            previous = frozenset()
        if found:
            owners: Iterable[str | None] = found
        elif segment.sentence in sentences_with_names:
            owners = previous  # continues the clause before it
        else:
            owners = named if len(named) == 1 else ()  # a single-company story
        for ticker in owners:
            if ticker is not None:  # another company's clause is nobody's here
                out.setdefault(ticker, []).append(i)
        previous = found or previous
    return out


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in ",;"):
        end -= 1
    return start, end
