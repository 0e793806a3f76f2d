"""scorer.scoring.sentiment: which sentences of an article are scored, and the score formula."""

from __future__ import annotations

import numpy as np

from scorer.scoring.sentiment import (
    MAX_SENTENCES,
    article_sentences,
    predict_articles,
    split_sentences,
)


def test_it_splits_at_sentence_ends_followed_by_a_capital_digit_or_quote() -> None:
    text = 'Sales rose. 2027 looks better! "We are pleased," it said? (Shares) rose.'
    assert split_sentences(text) == [
        "Sales rose.",
        "2027 looks better!",
        '"We are pleased," it said?',
        "(Shares) rose.",
    ]


def test_it_keeps_decimals_and_lower_case_continuations_in_one_sentence() -> None:
    assert split_sentences("Revenue was $1.5 billion. margins widened to 3.2 percent.") == [
        "Revenue was $1.5 billion. margins widened to 3.2 percent."
    ]


def test_a_headline_repeated_as_the_summarys_first_sentence_is_counted_once() -> None:
    sentences = article_sentences(
        "Apple beats estimates", "Apple beats estimates. Shares rose 3% after hours."
    )
    assert sentences == ["Apple beats estimates", "Shares rose 3% after hours."]


def test_an_article_is_scored_on_at_most_eight_sentences_headline_first() -> None:
    summary = " ".join(f"Sentence {i} is here." for i in range(20))
    sentences = article_sentences("Headline", summary)
    assert len(sentences) == MAX_SENTENCES == 8
    assert sentences[0] == "Headline" and sentences[-1] == "Sentence 6 is here."


def test_an_empty_article_is_one_empty_sentence() -> None:
    assert article_sentences("", "   ") == [""]


class _Fixed:
    """A classifier whose probabilities depend on the sentence's first word."""

    def __init__(self) -> None:
        self.model_id, self.revision = "fixed", "1"
        self.labels = ["negative", "neutral", "positive"]

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        table = {"Up": [0.1, 0.1, 0.8], "Down": [0.7, 0.2, 0.1]}
        return np.array([table.get(t.split()[0], [0.2, 0.6, 0.2]) for t in texts])


def test_the_score_is_positive_minus_negative_of_the_mean_over_sentences() -> None:
    (prediction,) = predict_articles(_Fixed(), [("Up a lot", "Down a bit. Up again.")])
    assert prediction.sentences == 3
    assert np.isclose(prediction.p_positive, (0.8 + 0.1 + 0.8) / 3)
    assert np.isclose(prediction.p_negative, (0.1 + 0.7 + 0.1) / 3)
    assert np.isclose(prediction.score, prediction.p_positive - prediction.p_negative)
    assert prediction.label == "positive"
