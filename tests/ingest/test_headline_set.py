"""tests/data/headlines.toml: a well-formed labelled set, and tagging that meets its
targets on it (precision >= 0.95, recall >= 0.90; bench/tagging.py has the table)."""

from __future__ import annotations

import html
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scorer.ingest.tagging import tagger_for

SET = Path(__file__).parents[1] / "data" / "headlines.toml"
KINDS = {
    "contrastive", "multi", "title_case", "homonym", "short_name", "broker", "none",
    "cashtag", "exchange", "plain", "fixture",
}  # fmt: skip
FIXTURES = Path(__file__).parents[1] / "fixtures" / "feeds"


@pytest.fixture(scope="module")
def labelled() -> dict[str, Any]:
    return tomllib.loads(SET.read_text(encoding="utf-8"))


def test_the_set_is_well_formed(labelled: dict[str, Any]) -> None:
    watchlist, headlines = set(labelled["set"]["watchlist"]), labelled["headline"]
    ids = [h["id"] for h in headlines]
    assert len(ids) == len(set(ids)) >= 150
    for h in headlines:
        assert h["tickers"] == sorted(set(h["tickers"])), h["id"]
        assert set(h["tickers"]) <= watchlist, h["id"]
        assert h["kinds"] and set(h["kinds"]) <= KINDS, h["id"]
        text = h["title"] + "\n" + h.get("summary", "")
        for ticker, clause in h.get("clauses", {}).items():
            assert ticker in h["tickers"] and clause in text, h["id"]
        assert ("clauses" in h) == ("contrastive" in h["kinds"]), h["id"]


def test_the_set_covers_what_tagging_gets_wrong(labelled: dict[str, Any]) -> None:
    kinds = Counter(k for h in labelled["headline"] for k in h["kinds"])
    floors = {"contrastive": 45, "homonym": 25, "title_case": 20, "short_name": 20,
              "none": 15, "broker": 10, "fixture": 15}  # fmt: skip
    assert {k: kinds[k] for k in floors} == {k: max(kinds[k], n) for k, n in floors.items()}


def test_fixture_titles_are_verbatim_from_the_captured_feeds(labelled: dict[str, Any]) -> None:
    def plain(text: str) -> str:  # the feeds write apostrophes three ways
        return html.unescape(html.unescape(text)).replace("’", "'").replace("‘", "'")

    captured = "\n".join(plain(p.read_text("utf-8")) for p in FIXTURES.glob("*.xml"))
    for h in labelled["headline"]:
        if "fixture" in h["kinds"]:
            assert plain(h["title"]) in captured, h["id"]


def test_tagging_meets_its_targets_on_the_set(labelled: dict[str, Any]) -> None:
    tagger = tagger_for(frozenset(labelled["set"]["watchlist"]))
    tp = fp = fn = 0
    for h in labelled["headline"]:
        expected = set(h["tickers"])
        got = {t.ticker for t in tagger.tag(h["title"], h.get("summary", ""))}
        tp, fp, fn = tp + len(expected & got), fp + len(got - expected), fn + len(expected - got)
    assert tp / (tp + fp) >= 0.95
    assert tp / (tp + fn) >= 0.90
