"""From text to a sentiment score, the way FinBERT's own ``predict`` does it.

FinBERT was trained on single sentences of at most 64 tokens, so an article
(headline + summary) is split into sentences, each is classified, and the
per-sentence probabilities are averaged. Score = P(positive) - P(negative).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

MAX_TOKENS = 64  # FinBERT's training length
MAX_SENTENCES = 8  # bounds the cost of a long summary; leads carry the news
REQUIRED_LABELS = frozenset({"positive", "negative", "neutral"})

# A sentence ends at . ! or ? followed by space and a capital, digit or quote. Not perfect
# (abbreviations like "Inc. Shares" split), but FinBERT averages over sentences, so an
# extra split costs little; nltk's punkt would add a download at boot for small gain.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9$])")


class Classifier(Protocol):
    """What scoring needs from a loaded model, whatever its runtime."""

    model_id: str
    revision: str
    labels: list[str]  # index -> label name, from config.id2label

    def predict_proba(self, texts: list[str]) -> np.ndarray: ...


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


def check_labels(labels: Sequence[str]) -> list[str]:
    """Normalise the model's label names and insist on the three FinBERT classes."""
    names = [label.lower() for label in labels]
    if set(names) != REQUIRED_LABELS:
        raise ValueError(f"model labels {names} are not positive/negative/neutral")
    return names


def predict_articles(
    classifier: Classifier, articles: Sequence[tuple[str, str]]
) -> list[Prediction]:
    """Score (title, summary) pairs: one batched model pass over all their sentences."""
    per_article = [article_sentences(title, summary) for title, summary in articles]
    flat = [s for sentences in per_article for s in sentences]
    if not flat:
        return []
    probs = classifier.predict_proba(flat)
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


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    probs: np.ndarray = exp / exp.sum(axis=-1, keepdims=True)
    return probs


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length, so padding is small."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
