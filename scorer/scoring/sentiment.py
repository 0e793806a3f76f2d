"""From text to sentiment scores, the way FinBERT's own ``predict`` does it, per ticker.

FinBERT was trained on single sentences of at most 64 tokens, so an article
(headline + summary) is split into sentences, and each sentence into its clauses
(``scorer.scoring.segments``). Every segment is classified in one batched pass. A
sentence's probabilities are the mean of its clauses'; the article's the mean of its
sentences' (FinBERT's ``predict``). A ticker's are the mean of the segments about it
(scope ``ticker``); a ticker the text never names (tagged by its feed or by data) gets
the article's (scope ``article``). Score = P(positive) - P(negative).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from scorer.scoring.cache import SentenceCache
from scorer.scoring.model.base import LABELS, Classifier
from scorer.scoring.segments import (
    HEADLINE,
    MAX_SENTENCES,
    SUMMARY,
    Segment,
    Splits,
    article_segments,
    evidence,
)

__all__ = ["MAX_SENTENCES", "METHOD", "Prediction", "predict_articles", "score_articles"]

# Provenance of how a score was made, stored with every score event beside the model id
# and revision. "article-1": every ticker got its article's sentence mean (before
# 2026-12-06); "clauses-1": each ticker's own clauses, with highlights.
METHOD = "clauses-1"
ARTICLE_METHOD = "article-1"
SCOPE_TICKER, SCOPE_ARTICLE = "ticker", "article"
MAX_HIGHLIGHTS = 3


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    p_positive: float
    p_negative: float
    p_neutral: float
    sentences: int
    scope: str = SCOPE_ARTICLE
    highlights: tuple[Highlight, ...] = ()


@dataclass(frozen=True)
class Highlight:
    """A segment that moved a score, with the model's own probabilities on its words."""

    segment: Segment
    label: str
    score: float
    p_positive: float
    p_negative: float
    p_neutral: float

    def as_json(self) -> dict[str, object]:
        s = self.segment
        return {
            "text": s.text,
            "in": s.where,
            "start": s.start,
            "end": s.end,
            "label": self.label,
            "score": round(self.score, 4),
            "probabilities": {
                "positive": round(self.p_positive, 4),
                "negative": round(self.p_negative, 4),
                "neutral": round(self.p_neutral, 4),
            },
        }


@dataclass(frozen=True)
class ArticleScores:
    """One article, scored: the article-level prediction and, per ticker, its own."""

    article: Prediction
    tickers: dict[str, Prediction] = field(default_factory=dict)

    def for_ticker(self, ticker: str) -> Prediction:
        return self.tickers.get(ticker, self.article)


# Which tickers one article's text names: (text) -> [(ticker, start, end)], offsets
# into the text. One per article: what counts as a mention can depend on the article
# (an ambiguous name is confirmed by the article's other evidence).
Mentions = Callable[[str], Sequence[tuple[str | None, int, int]]]  # None: unwatched


def score_articles(
    classifier: Classifier,
    articles: Sequence[tuple[str, str]],
    mentions: Sequence[Mentions] | None = None,
    cache: SentenceCache | None = None,
) -> list[ArticleScores]:
    """Score (title, summary) pairs in one batched model pass over all their segments
    (less those the ``cache`` holds); with ``mentions`` (one per article), each named
    ticker gets the score of its own segments and its highlights."""
    finders = [None] * len(articles) if mentions is None else mentions
    named = [
        {HEADLINE: list(f(title)), SUMMARY: list(f(summary))} if f else None
        for (title, summary), f in zip(articles, finders, strict=True)
    ]
    per_article = [
        article_segments(title, summary, _several_named(names)) or [_EMPTY]
        for (title, summary), names in zip(articles, named, strict=True)
    ]
    flat = [s.text for segments in per_article for s in segments]
    if not flat:
        return []
    probs = (
        classifier.predict_proba(flat) if cache is None else cache.predict_proba(classifier, flat)
    )
    index = [classifier.labels.index(k) for k in LABELS]
    probs = probs[:, index]  # columns in LABELS order, whatever the model's id2label
    out, start = [], 0
    for segments, names in zip(per_article, named, strict=True):
        mine = probs[start : start + len(segments)]
        start += len(segments)
        out.append(_scores(segments, mine, names))
    return out


Named = dict[str, list[tuple[str | None, int, int]]]  # where -> tickers named, with offsets


def _several_named(named: Named | None) -> Splits:
    """Rule 2: cut a sentence into clauses only if it names two or more tickers."""
    if named is None:
        return lambda where, start, end: False

    def split(where: str, start: int, end: int) -> bool:
        return len({t for t, a, b in named[where] if a < end and b > start}) > 1

    return split


def predict_articles(
    classifier: Classifier,
    articles: Sequence[tuple[str, str]],
    cache: SentenceCache | None = None,
) -> list[Prediction]:
    """The article-level prediction of each (title, summary) pair."""
    return [scores.article for scores in score_articles(classifier, articles, None, cache)]


_EMPTY = Segment(HEADLINE, 0, 0, "", 0)  # an article with no text: one empty sentence


def _scores(segments: list[Segment], probs: np.ndarray, named: Named | None) -> ArticleScores:
    sentence_of = np.array([s.sentence for s in segments])
    sentences = sorted(set(sentence_of.tolist()))
    per_sentence = np.stack([probs[sentence_of == n].mean(axis=0) for n in sentences])
    article = _prediction(
        per_sentence.mean(axis=0), len(sentences), SCOPE_ARTICLE, _top(segments, probs, None)
    )
    if named is None:
        return ArticleScores(article)
    per_segment = [
        frozenset(t for t, a, b in named[s.where] if a < s.end and b > s.start) for s in segments
    ]
    tickers = {
        ticker: _prediction(
            probs[rows].mean(axis=0),
            len({segments[i].sentence for i in rows}),
            SCOPE_TICKER,
            _top(segments, probs, rows),
        )
        for ticker, rows in evidence(segments, per_segment).items()
    }
    return ArticleScores(article, tickers)


def _top(
    segments: list[Segment], probs: np.ndarray, rows: Sequence[int] | None
) -> tuple[Highlight, ...]:
    """The segments that moved the score most: the strongest opinions (|P+ - P-|),
    at most MAX_HIGHLIGHTS, in the order they appear."""
    rows = range(len(segments)) if rows is None else rows
    scored = [(i, float(probs[i][0] - probs[i][1])) for i in rows if segments[i].text]
    strongest = sorted(scored, key=lambda pair: (-abs(pair[1]), pair[0]))[:MAX_HIGHLIGHTS]
    return tuple(
        Highlight(segments[i], LABELS[int(np.argmax(probs[i]))], score, *map(float, probs[i]))
        for i, score in sorted(strongest)
    )


def _prediction(
    mean: np.ndarray, sentences: int, scope: str, highlights: tuple[Highlight, ...]
) -> Prediction:
    pos, neg, neu = (float(v) for v in mean)
    return Prediction(
        label=LABELS[int(np.argmax(mean))],
        score=pos - neg,
        p_positive=pos,
        p_negative=neg,
        p_neutral=neu,
        sentences=sentences,
        scope=scope,
        highlights=highlights,
    )


def highlights_json(prediction: Prediction) -> list[dict[str, object]]:
    """The highlights as stored with a score event and served by the API."""
    return [h.as_json() for h in prediction.highlights]
