"""A feed of many items and the counts that show nothing was lost or doubled
(the crash and SIGTERM tests)."""

from __future__ import annotations

from sqlalchemy import func, select

from scorer.storage.tables import ArticleTicker, ScoreEvent

ITEMS = 400


def _feed() -> bytes:
    items = "".join(
        f"<item><title>$AAPL shares rise {i}</title><link>https://x.test/{i}</link>"
        f"<description>Revenue rose. Analysts upgrade the stock.</description></item>"
        for i in range(ITEMS)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>{items}'
        "</channel></rss>".encode()
    )


def _counts(sessions) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        pairs = session.scalar(select(func.count()).select_from(ArticleTicker)) or 0
        events = session.scalar(select(func.count()).select_from(ScoreEvent)) or 0
        distinct = (
            session.scalar(
                select(func.count()).select_from(
                    select(ScoreEvent.article_id, ScoreEvent.ticker).distinct().subquery()
                )
            )
            or 0
        )
    return pairs, events, distinct
