"""scorer.scoring.sentiment: the score formula, per article and per ticker, and highlights."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scorer.scoring.sentiment import (
    SCOPE_ARTICLE,
    SCOPE_TICKER,
    highlights_json,
    predict_articles,
    score_articles,
)


class _Fixed:
    """A classifier whose probabilities depend on a segment's last word."""

    def __init__(self) -> None:
        self.model_id, self.revision = "fixed", "1"
        self.labels = ["negative", "neutral", "positive"]
        self.calls: list[list[str]] = []

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        table = {"up": [0.1, 0.1, 0.8], "down": [0.7, 0.2, 0.1]}
        return np.array(
            [table.get((t.split() or [""])[-1].strip("."), [0.2, 0.6, 0.2]) for t in texts]
        )


def _names(*names: tuple[str, str]) -> object:
    def mentions(text: str) -> Sequence[tuple[str, int, int]]:
        return [
            (ticker, text.index(name), text.index(name) + len(name))
            for name, ticker in names
            if name in text
        ]

    return mentions


def test_the_score_is_positive_minus_negative_of_the_mean_over_sentences() -> None:
    (prediction,) = predict_articles(_Fixed(), [("It went up", "Then down. Then up.")])
    assert prediction.sentences == 3
    assert np.isclose(prediction.p_positive, (0.8 + 0.1 + 0.8) / 3)
    assert np.isclose(prediction.p_negative, (0.1 + 0.7 + 0.1) / 3)
    assert np.isclose(prediction.score, prediction.p_positive - prediction.p_negative)
    assert prediction.label == "positive"


def test_a_sentence_weighs_as_one_however_many_clauses_it_has() -> None:
    (scores,) = score_articles(
        _Fixed(),
        [("A went up, while B went down", "C went down.")],
        [_names(("A", "A"), ("B", "B"))],  # type: ignore[list-item]
    )
    # headline = mean(up, down); summary = down; article = mean of the two sentences
    assert np.isclose(scores.article.p_negative, ((0.1 + 0.7) / 2 + 0.7) / 2)
    assert scores.article.sentences == 2


def test_a_sentence_about_one_company_is_scored_whole() -> None:
    model = _Fixed()
    title = "Apple went down, while its suppliers went up"
    (scores,) = score_articles(model, [(title, "")], [_names(("Apple", "AAPL"))])  # type: ignore[list-item]
    (alone,) = predict_articles(model, [(title, "")])
    assert model.calls == [[title], [title]]  # never cut: the whole sentence is Apple's
    assert scores.for_ticker("AAPL").scope == SCOPE_TICKER
    assert np.isclose(scores.for_ticker("AAPL").score, alone.score)


def test_each_named_ticker_is_scored_on_its_own_clause() -> None:
    mentions = _names(("Tesla", "TSLA"), ("Ford", "F"))
    (scores,) = score_articles(
        _Fixed(),
        [("Tesla shares went down, while Ford went up", "")],
        [mentions],  # type: ignore[list-item]
    )
    tesla, ford = scores.for_ticker("TSLA"), scores.for_ticker("F")
    assert (tesla.label, tesla.scope) == ("negative", SCOPE_TICKER)
    assert (ford.label, ford.scope) == ("positive", SCOPE_TICKER)
    assert np.isclose(ford.score, 0.8 - 0.1) and np.isclose(tesla.score, 0.1 - 0.7)


def test_a_ticker_the_text_never_names_gets_the_article_score_marked_so() -> None:
    model = _Fixed()
    (scores,) = score_articles(model, [("Stocks went up", "")], [_names()])  # type: ignore[list-item]
    feed_only = scores.for_ticker("AAPL")
    assert feed_only.scope == SCOPE_ARTICLE and feed_only == scores.article


def test_segments_of_every_article_go_to_the_model_in_one_pass() -> None:
    model = _Fixed()
    score_articles(
        model,
        [("A went up, while B went down", "C went down."), ("D went up", "")],
        [_names(("A", "A"), ("B", "B")), _names()],  # type: ignore[list-item]
    )
    assert model.calls == [["A went up", "B went down", "C went down.", "D went up"]]


def test_highlights_are_the_strongest_segments_with_where_they_are() -> None:
    mentions = _names(("Ford", "F"))
    title = "Ford went up"
    summary = "Ford sales went up. Ford costs went down. Ford said little. Ford went down."
    (scores,) = score_articles(_Fixed(), [(title, summary)], [mentions])  # type: ignore[list-item]
    shown = highlights_json(scores.for_ticker("F"))
    assert len(shown) == 3
    assert [h["text"] for h in shown] == [
        "Ford went up",
        "Ford sales went up.",
        "Ford costs went down.",
    ]
    first = shown[0]
    assert first["in"] == "headline" and (first["start"], first["end"]) == (0, len(title))
    assert first["label"] == "positive" and first["probabilities"] == {
        "positive": 0.8,
        "negative": 0.1,
        "neutral": 0.1,
    }
    for h in shown[1:]:
        assert summary[h["start"] : h["end"]] == h["text"] and h["in"] == "summary"


def test_an_unwatched_companys_clause_does_not_count_for_the_watched_one() -> None:
    def mentions(text: str) -> Sequence[tuple[str | None, int, int]]:
        return [
            (t, text.index(n), text.index(n) + len(n))
            for n, t in (("$A", "A"), ("$Z", None))
            if n in text
        ]

    (scores,) = score_articles(_Fixed(), [("$A went up; $Z went down", "")], [mentions])
    assert scores.for_ticker("A").label == "positive"
    assert [h.segment.text for h in scores.for_ticker("A").highlights] == ["$A went up"]
