"""From text to a sentiment score, the way FinBERT's own ``predict`` does it.

FinBERT was trained on single sentences of at most 64 tokens, so an article
(headline + summary) is split into sentences, each is classified, and the
per-sentence probabilities are averaged. Score = P(positive) - P(negative).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scorer.scoring.cache import SentenceCache
from scorer.scoring.model.base import Classifier

MAX_SENTENCES = 8  # bounds the cost of a long summary; leads carry the news

# A sentence ends at . ! or ? followed by space and a capital, digit or quote. Not perfect
# (abbreviations like "Inc. Shares" split), but FinBERT averages over sentences, so an
# extra split costs little; nltk's punkt would add a download at boot for small gain.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9$])")


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    p_positive: float
    p_negative: float
    p_neutral: float
    sentences: int


def split_sentences(text: str) -> list[str]:
    """Split text into sentences (pure)."""
    parts = (s.strip() for s in _SENTENCE_END.split(text.strip()))
    return [p for p in parts if p]


def article_sentences(title: str, summary: str) -> list[str]:
    """The sentences to score: the headline as one, then the summary's.

    Feeds often repeat the headline as the summary's first sentence; it is counted once.
    """
    sentences = [title.strip()] if title.strip() else []
    for sentence in split_sentences(summary):
        if sentence.rstrip(".") != title.strip().rstrip("."):
            sentences.append(sentence)
    return sentences[:MAX_SENTENCES] or [""]


def predict_articles(
    classifier: Classifier,
    articles: Sequence[tuple[str, str]],
    cache: SentenceCache | None = None,
) -> list[Prediction]:
    """Score (title, summary) pairs: one batched model pass over all their sentences,
    less those the ``cache`` already holds for this model revision."""
    per_article = [article_sentences(title, summary) for title, summary in articles]
    flat = [s for sentences in per_article for s in sentences]
    if not flat:
        return []
    if cache is None:
        probs = classifier.predict_proba(flat)
    else:
        probs = cache.predict_proba(classifier, flat)
    index = {name: i for i, name in enumerate(classifier.labels)}
    out: list[Prediction] = []
    start = 0
    for sentences in per_article:
        mean = probs[start : start + len(sentences)].mean(axis=0)
        start += len(sentences)
        out.append(_prediction(mean, index, classifier.labels, len(sentences)))
    return out


def _prediction(
    mean: np.ndarray, index: dict[str, int], labels: list[str], sentences: int
) -> Prediction:
    pos, neg, neu = (float(mean[index[k]]) for k in ("positive", "negative", "neutral"))
    return Prediction(
        label=labels[int(np.argmax(mean))],
        score=pos - neg,
        p_positive=pos,
        p_negative=neg,
        p_neutral=neu,
        sentences=sentences,
    )
