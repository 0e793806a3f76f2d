"""scorer.scoring.cache: repeated sentences skip the model, and never change a score."""

from __future__ import annotations

import numpy as np
import pytest

from scorer.scoring.cache import SentenceCache
from scorer.scoring.sentiment import predict_articles


class _Counting:
    """A classifier whose probabilities come from the sentence's length and revision,
    and which records every sentence it is asked to score."""

    def __init__(self, revision: str = "1") -> None:
        self.model_id, self.revision = "counting", revision
        self.labels = ["positive", "negative", "neutral"]
        self.seen: list[str] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        bump = 0.1 if self.revision == "1" else 0.2
        rows = [[0.5 + bump * (len(t) % 3) / 2, 0.3, 0.0] for t in texts]
        out = np.array(rows, dtype=np.float32)
        out[:, 2] = 1 - out[:, 0] - out[:, 1]
        return out


ARTICLES = [
    ("8-K - Current report", "Item 2.02 results. Boilerplate disclaimer."),
    ("Apple beats estimates", "Boilerplate disclaimer."),
    ("8-K - Current report", "Item 7.01 Regulation FD."),
]


def test_a_repeated_sentence_is_scored_once_and_keeps_its_score() -> None:
    model, cache = _Counting(), SentenceCache()
    uncached = predict_articles(_Counting(), ARTICLES)
    cached = predict_articles(model, ARTICLES, cache)

    assert cached == uncached
    assert sorted(model.seen) == sorted(set(model.seen))  # each sentence once
    assert (cache.hits, cache.misses) == (2, 5)  # 7 sentences, 5 distinct
    again = predict_articles(model, ARTICLES, cache)
    assert again == uncached and len(model.seen) == 5 and cache.hits == 9


def test_another_revision_never_gets_an_earlier_revisions_probabilities() -> None:
    cache = SentenceCache()
    v1, v2 = _Counting("1"), _Counting("2")
    first = predict_articles(v1, ARTICLES, cache)
    second = predict_articles(v2, ARTICLES, cache)

    assert second == predict_articles(_Counting("2"), ARTICLES)
    assert second != first and len(v2.seen) == 5


def test_the_least_recently_used_sentence_leaves_first() -> None:
    model, cache = _Counting(), SentenceCache(size=2)
    cache.predict_proba(model, ["a", "b"])
    cache.predict_proba(model, ["a"])  # "a" is now the most recent
    cache.predict_proba(model, ["c"])  # evicts "b"
    model.seen.clear()

    cache.predict_proba(model, ["a", "b", "c"])
    assert model.seen == ["b"] and len(cache) == 2


def test_a_cache_holds_at_least_one_sentence() -> None:
    with pytest.raises(ValueError, match="at least one"):
        SentenceCache(size=0)
