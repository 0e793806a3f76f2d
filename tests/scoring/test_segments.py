"""scorer.scoring.segments: sentences, clauses, and which segments are about which ticker."""

from __future__ import annotations

import pytest

from scorer.scoring.segments import (
    MAX_SENTENCES,
    Segment,
    article_segments,
    evidence,
    split_clauses,
    split_sentences,
)


def _texts(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[a:b] for a, b in spans]


def test_it_splits_at_sentence_ends_followed_by_a_capital_digit_or_quote() -> None:
    text = 'Sales rose. 2027 looks better! "We are pleased," it said? (Shares) rose.'
    assert _texts(text, split_sentences(text)) == [
        "Sales rose.",
        "2027 looks better!",
        '"We are pleased," it said?',
        "(Shares) rose.",
    ]


def test_it_keeps_decimals_and_lower_case_continuations_in_one_sentence() -> None:
    text = "Revenue was $1.5 billion. margins widened to 3.2 percent."
    assert _texts(text, split_sentences(text)) == [text]


@pytest.mark.parametrize(
    ("sentence", "clauses"),
    [
        (
            "Tesla shares plunge after a recall, while Ford soars on strong EV sales",
            ["Tesla shares plunge after a recall", "Ford soars on strong EV sales"],
        ),
        ("Intel falls as AMD gains market share", ["Intel falls", "AMD gains market share"]),
        ("Apple beats; Microsoft misses", ["Apple beats", "Microsoft misses"]),
        ("Nike beats estimates but Adidas misses", ["Nike beats estimates", "Adidas misses"]),
        (
            "Boeing climbs, as deliveries recover",
            ["Boeing climbs", "deliveries recover"],
        ),
        ("Costs rose whereas sales fell", ["Costs rose", "sales fell"]),
        ("Oil slid even as Exxon held up", ["Oil slid", "Exxon held up"]),
    ],
)
def test_a_sentence_that_joins_two_pieces_of_news_is_cut_where_it_joins_them(
    sentence: str, clauses: list[str]
) -> None:
    assert _texts(sentence, split_clauses(sentence)) == clauses


@pytest.mark.parametrize(
    "sentence",
    [
        "Shares rose as much as 5% after the report",
        "Apple shares rose as expected",
        "Walmart and Target rally on holiday sales",
        "Netflix beats",
    ],
)
def test_a_sentence_with_one_piece_of_news_stays_whole(sentence: str) -> None:
    assert _texts(sentence, split_clauses(sentence)) == [sentence]


def test_segments_carry_where_they_are_and_offsets_into_the_stored_text() -> None:
    title = "Intel falls as AMD gains"
    summary = "Chips were mixed. Intel cut its outlook; AMD raised it."
    segments = article_segments(title, summary)
    assert [(s.where, s.text, s.sentence) for s in segments] == [
        ("headline", "Intel falls", 0),
        ("headline", "AMD gains", 0),
        ("summary", "Chips were mixed.", 1),
        ("summary", "Intel cut its outlook", 2),
        ("summary", "AMD raised it.", 2),
    ]
    for s in segments:
        assert (title if s.where == "headline" else summary)[s.start : s.end] == s.text


def test_a_headline_repeated_as_the_summarys_first_sentence_is_counted_once() -> None:
    segments = article_segments(
        "Apple beats estimates", "Apple beats estimates. Shares rose 3% after hours."
    )
    assert [s.text for s in segments] == ["Apple beats estimates", "Shares rose 3% after hours."]


def test_an_article_is_scored_on_at_most_eight_sentences_headline_first() -> None:
    summary = " ".join(f"Sentence {i} is here." for i in range(20))
    segments = article_segments("Headline", summary)
    assert len({s.sentence for s in segments}) == MAX_SENTENCES == 8
    assert segments[0].text == "Headline" and segments[-1].text == "Sentence 6 is here."


def test_an_empty_article_has_no_segments() -> None:
    assert article_segments("", "   ") == []


def _segs(*sentences: list[str]) -> list[Segment]:
    return [Segment("summary", 0, 0, t, n) for n, clauses in enumerate(sentences) for t in clauses]


def test_a_segment_naming_a_ticker_is_its_evidence_and_others_are_not() -> None:
    segments = _segs(["Tesla plunges", "Ford soars"])
    assert evidence(segments, [frozenset({"TSLA"}), frozenset({"F"})]) == {"TSLA": [0], "F": [1]}


def test_a_clause_naming_no_company_continues_the_clause_before_it() -> None:
    segments = _segs(["Tesla plunges", "Ford soars", "analysts stay cautious"])
    found = evidence(segments, [frozenset({"TSLA"}), frozenset({"F"}), frozenset()])
    assert found == {"TSLA": [0], "F": [1, 2]}


def test_in_a_single_company_story_the_other_sentences_are_about_that_company() -> None:
    segments = _segs(["Apple beats estimates"], ["Revenue rose 8%"], ["Margins widened"])
    found = evidence(segments, [frozenset({"AAPL"}), frozenset(), frozenset()])
    assert found == {"AAPL": [0, 1, 2]}


def test_in_a_story_naming_several_companies_unnamed_sentences_count_for_none() -> None:
    segments = _segs(["Intel falls", "AMD gains"], ["Chip stocks were mixed"])
    found = evidence(segments, [frozenset({"INTC"}), frozenset({"AMD"}), frozenset()])
    assert found == {"INTC": [0], "AMD": [1]}


def test_a_clause_naming_two_companies_is_evidence_for_both() -> None:
    segments = _segs(["Apple and Microsoft rally"])
    assert evidence(segments, [frozenset({"AAPL", "MSFT"})]) == {"AAPL": [0], "MSFT": [0]}


def test_an_unwatched_companys_clause_and_what_continues_it_are_nobodys() -> None:
    segments = _segs(["$MSFT beats", "$ZZZZ misses", "its shares fall"], ["Revenue rose"])
    found = evidence(segments, [frozenset({"MSFT"}), frozenset({None}), frozenset(), frozenset()])
    assert found == {"MSFT": [0, 3]}  # the last sentence: a one-watched-company story
