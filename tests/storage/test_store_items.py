"""store_items' syndication rule, on SQLite and Postgres: the same title from another
source is a copy of one story; from the same source (name or feed) it is another story."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scorer.storage.store import store_items
from scorer.storage.tables import Article, ArticleCopy
from tests.helpers.items import NOW, item

TITLE = "Exxon Mobil Declares Fourth Quarter Dividend Today"


def _counts(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as session:
        articles = session.scalar(select(func.count()).select_from(Article)) or 0
        copies = session.scalar(select(func.count()).select_from(ArticleCopy)) or 0
    return articles, copies


def test_a_feeds_next_story_under_a_stored_title_is_not_a_copy_whatever_its_old_source(
    sessions: sessionmaker[Session],
) -> None:
    # Stored before sources were named after their feed: the source was the feed's title.
    old = replace(item("a", TITLE, {"XOM"}), source="Latest Filings - Fri, 18:03:44 EST")
    with sessions.begin() as session:
        store_items(session, [old], now=NOW, feed_id=7)
    new = replace(item("b", TITLE, {"XOM"}), source="Exxon filings")
    with sessions.begin() as session:
        stored = store_items(session, [new], now=NOW, feed_id=7)
    assert (stored.new, stored.copies) == (1, 0)
    assert _counts(sessions) == (2, 0)


def test_the_same_title_from_another_feed_and_source_is_still_a_copy(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        store_items(
            session, [replace(item("a", TITLE, {"XOM"}), source="Wire A")], now=NOW, feed_id=1
        )
    with sessions.begin() as session:
        copy = replace(item("b", TITLE, {"XOM"}), source="Wire B")
        stored = store_items(session, [copy], now=NOW, feed_id=2)
    assert (stored.new, stored.copies) == (0, 1)
    assert _counts(sessions) == (1, 1)


def test_an_item_never_taken_for_a_copy_is_stored_even_from_another_source(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        store_items(
            session, [replace(item("a", TITLE, {"XOM"}), source="Wire A")], now=NOW, feed_id=1
        )
    filing = replace(item("b", TITLE, {"XOM"}), source="Filings", copies_by_title=False)
    assert filing.title_key is None
    with sessions.begin() as session:
        stored = store_items(session, [filing], now=NOW, feed_id=2)
    assert (stored.new, stored.copies) == (1, 0)
    with sessions() as session:
        keys = session.scalars(select(Article.title_key).order_by(Article.id)).all()
    assert keys[0] is not None and keys[1] is None
