"""Demo data: synthetic but plausible articles and score events over the sessions of
the last days, with their roll-ups (``python -m scorer seed-demo``).

Each ticker's sentiment drifts from session to session; most news arrives during
the session, some overnight and before the open; scores are known a few minutes
after publication; a few pairs are re-scored under a second revision, so both
history bases differ. Demo rows are marked (``demo-`` dedup keys, the ``demo``
meta key), so a second run replaces them and real data is never mixed in silently.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, insert, select, text
from sqlalchemy.orm import Session

from scorer.market import calendar
from scorer.scoring.sentiment import METHOD
from scorer.storage import rollups
from scorer.storage.buckets import previous_close
from scorer.storage.db import meta_get, meta_set
from scorer.storage.tables import Article, ArticleTicker, ScoreEvent, ScoreRollup

DEMO_KEY = "demo"
MODEL_ID, REVISIONS = "demo/finbert", ("demo-r1", "demo-r2")
RESCORED = 0.02  # share of events that are re-scores under the second revision
_WELL_KNOWN = "AAPL MSFT NVDA AMZN GOOGL META TSLA BRK.B JPM V UNH XOM JNJ WMT MA PG HD CVX ABBV \
KO PEP AVGO COST MRK LLY BAC ADBE CRM NFLX AMD INTC ORCL CSCO DIS NKE MCD T VZ"
WELL_KNOWN = _WELL_KNOWN.split()
GOOD = ("beats estimates", "raises guidance", "wins major contract", "shares surge on demand")
BAD = ("misses estimates", "cuts outlook", "faces regulatory probe", "shares slide on weak sales")
FLAT = ("holds annual meeting", "names new director", "reports in line", "maintains dividend")


# The command line's bounds (``python -m scorer seed-demo``; docs/operations.md).
MAX_TICKERS, MAX_EVENTS, MAX_DAYS = 1_000, 2_000_000, 3_650


class DemoRefused(Exception):
    """The database holds real data and ``force`` was not given."""


class NoSession(ValueError):
    """No NYSE session has opened in the days asked for (a weekend, a holiday, before
    Monday's open): nothing to put demo data in."""


@dataclass
class DemoResult:
    tickers: int
    articles: int
    events: int
    sessions: int
    buckets: int
    first: str
    last: str


def tickers(count: int) -> list[str]:
    """``count`` ticker symbols: well-known ones first, then made-up ones."""
    rng, names = random.Random(3), list(WELL_KNOWN[:count])
    while len(names) < count:
        name = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 4)))
        if name not in names:
            names.append(name)
    return names


def _times(rng: random.Random, sessions: list[calendar.Session], now: datetime) -> datetime:
    """A publication time: mostly in a session, a fifth since the previous close."""
    session = rng.choice(sessions)
    if rng.random() < 0.8:
        span = (min(session.close_utc, now) - session.open_utc).total_seconds()
        return session.open_utc + timedelta(seconds=rng.uniform(0, max(span, 1)))
    close = previous_close(session) or session.open_utc - timedelta(hours=17)
    return close + timedelta(seconds=rng.uniform(0, (session.open_utc - close).total_seconds()))


def _probabilities(rng: random.Random, mood: float) -> tuple[float, float, float]:
    score = math.tanh(mood + rng.gauss(0, 0.9))
    neutral = max(0.02, 1 - abs(score)) * rng.uniform(0.5, 1.0)
    rest = 1 - neutral
    positive = rest * (1 + score) / 2
    return positive, rest - positive, neutral


def generate(
    names: list[str], events: int, days: int, now: datetime, seed: int = 7
) -> Iterator[tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]]:
    """(article, tag, score events) triples, oldest first; ``events`` events in all."""
    rng = random.Random(seed)
    sessions = demo_sessions(days, now)
    mood = {(t, s.date): rng.gauss(0, 0.6) for t in names for s in sessions}
    rescores = int(events * RESCORED)
    published = sorted(_times(rng, sessions, now) for _ in range(events - rescores))
    rescored = set(rng.sample(range(len(published)), rescores))
    for i, at in enumerate(published):
        ticker = names[rng.randrange(len(names))]
        seen = min(at + timedelta(seconds=rng.uniform(30, 300)), now)
        session = sessions[0] if at < sessions[0].open_utc else _session_at(sessions, at)
        article = {
            "dedup_key": f"demo-{i:09d}",
            "title": _headline(rng, ticker, mood[ticker, session.date]),
            "summary": f"{ticker} news for the Reasonator demo; not a real story.",
            "url": f"https://demo.invalid/{ticker.lower()}/{i}",
            "source": "Demo Wire",
            "published_at": at,
            "seen_at": seen,
        }
        scored = [min(seen + timedelta(seconds=rng.uniform(5, 180)), now)]
        if i in rescored:
            scored.append(min(scored[0] + timedelta(days=rng.uniform(0.5, 3)), now))
        made = []
        for revision, when in zip(REVISIONS, scored, strict=False):
            pos, neg, neu = _probabilities(rng, mood[ticker, session.date])
            made.append(
                {
                    "ticker": ticker,
                    "model_id": MODEL_ID,
                    "model_revision": revision,
                    "method": METHOD,
                    "scope": "article",
                    "label": max(
                        (("positive", pos), ("negative", neg), ("neutral", neu)),
                        key=lambda p: p[1],
                    )[0],
                    "score": pos - neg,
                    "p_positive": pos,
                    "p_negative": neg,
                    "p_neutral": neu,
                    "sentences": 2,
                    "published_at": at,
                    "scored_at": when,
                }
            )
        yield article, {"ticker": ticker}, made


def opened_sessions(days: int, now: datetime) -> list[calendar.Session]:
    """The sessions of the last ``days`` days (New York dates) that opened before ``now``."""
    today = now.astimezone(calendar.NY).date()
    return [
        s
        for s in calendar.sessions_between(today - timedelta(days=days), today)
        if s.open_utc < now
    ]


def demo_sessions(days: int, now: datetime) -> list[calendar.Session]:
    """``opened_sessions``, or NoSession saying the smallest ``days`` that has one."""
    sessions = opened_sessions(days, now)
    if sessions:
        return sessions
    today = now.astimezone(calendar.NY).date()
    enough = next((d for d in range(days + 1, MAX_DAYS + 1) if opened_sessions(d, now)), None)
    hint = f"; the smallest --days with one is {enough}" if enough else ""
    raise NoSession(
        f"no NYSE session opened in the last {days} day{'s' * (days != 1)} "
        f"({today - timedelta(days=days)} to {today}, New York){hint}"
    )


def _session_at(sessions: list[calendar.Session], at: datetime) -> calendar.Session:
    return next((s for s in reversed(sessions) if s.open_utc <= at), sessions[0])


def _headline(rng: random.Random, ticker: str, mood: float) -> str:
    pool = GOOD if mood > 0.3 else BAD if mood < -0.3 else FLAT
    return f"{ticker} {rng.choice(pool)}"


def seed(
    session: Session,
    *,
    n_tickers: int,
    n_events: int,
    days: int,
    now: datetime,
    force: bool = False,
    progress: Callable[[str], None] = lambda _: None,
) -> DemoResult:
    """Replace the demo data with a fresh set, roll-ups included; refuse a database
    holding real data unless ``force`` (the demo data is then added beside it). Raise
    NoSession, before writing anything, when no session opened in the ``days``."""
    demo_sessions(days, now)
    real = session.scalar(select(exists().where(~Article.dedup_key.like("demo-%"))))
    if real and meta_get(session, DEMO_KEY) is None and not force:
        raise DemoRefused("the database holds real articles; pass --force to add demo data anyway")
    demo = select(Article.id).where(Article.dedup_key.like("demo-%"))
    session.execute(delete(ScoreEvent).where(ScoreEvent.article_id.in_(demo)))
    session.execute(delete(ArticleTicker).where(ArticleTicker.article_id.in_(demo)))
    session.execute(delete(Article).where(Article.dedup_key.like("demo-%")))
    names = tickers(n_tickers)
    next_id = int(session.scalar(select(Article.id).order_by(Article.id.desc()).limit(1)) or 0) + 1
    articles: list[dict[str, Any]] = []
    tags: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    stored = n_articles = 0
    first = last = None
    for article, tag, made in generate(names, n_events, days, now):
        article_id = next_id + n_articles
        n_articles += 1
        articles.append({"id": article_id, **article})
        tags.append({"article_id": article_id, **tag})
        events.extend({"article_id": article_id, **e} for e in made)
        first = first or article["published_at"]
        last = article["published_at"]
        if len(events) >= 10_000:
            stored += _flush(session, articles, tags, events)
            progress(f"stored {stored:,} of {n_events:,} score events")
    stored += _flush(session, articles, tags, events)
    progress(f"stored {stored:,} score events; building roll-ups…")
    session.execute(delete(ScoreRollup))
    buckets = rollups.rebuild(session)
    _sync_sequence(session)
    result = DemoResult(
        tickers=len(names),
        articles=n_articles,
        events=stored,
        sessions=len(_session_dates(session)),
        buckets=buckets,
        first=(first or now).isoformat(),
        last=(last or now).isoformat(),
    )
    meta_set(session, DEMO_KEY, json.dumps(asdict(result) | {"seeded_at": now.isoformat()}))
    return result


def _flush(
    session: Session,
    articles: list[dict[str, Any]],
    tags: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> int:
    if articles:
        session.execute(insert(Article), articles)
        session.execute(insert(ArticleTicker), tags)
        session.execute(insert(ScoreEvent), events)
    count = len(events)
    articles.clear()
    tags.clear()
    events.clear()
    return count


def _session_dates(session: Session) -> list[Any]:
    return list(
        session.scalars(
            select(ScoreRollup.bucket_start)
            .where(ScoreRollup.interval == "session", ScoreRollup.basis == "known")
            .distinct()
        )
    )


def _sync_sequence(session: Session) -> None:
    """Ids were given explicitly: move Postgres's sequence past them."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text(
                "SELECT setval(pg_get_serial_sequence('articles', 'id'), "
                "(SELECT max(id) FROM articles))"
            )
        )
