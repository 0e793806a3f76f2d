"""A market-hours cycle's writes, for benches that read while scores are written.

Each cycle stores a burst of new articles for tickers no bench reads (``WRT-0`` …,
:data:`TICKERS`), then commits their scores in batches through the service's own
write path (``scorer.storage.store.store_scores``: events and roll-ups in one
transaction, the roll-ups' version renewed), ``--gap`` apart as the model would take
them, then pauses ``--pause`` seconds (the service's ``POLL_INTERVAL``; 300 in
production, short here so a bench of a few seconds sees several cycles). Stops after
``--seconds`` and prints one JSON line: cycles, batches, events, commit p50/max ms.

    python bench/cycle_writer.py --url sqlite:///var/bench/history/history.db --seconds 20
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKERS = tuple(f"WRT-{i}" for i in range(8))  # no demo ticker has a '-'
LABELS = ("positive", "negative", "neutral")


def _event(rng: random.Random, article_id: int, ticker: str, now: datetime) -> dict[str, Any]:
    p = [rng.random() for _ in range(3)]
    pos, neg, neu = (x / sum(p) for x in p)
    return {
        "article_id": article_id,
        "ticker": ticker,
        "model_id": "bench/writer",
        "model_revision": "w1",
        "method": "clauses-1",
        "scope": "article",
        "label": LABELS[max(range(3), key=lambda i: (pos, neg, neu)[i])],
        "score": pos - neg,
        "p_positive": pos,
        "p_negative": neg,
        "p_neutral": neu,
        "sentences": 1,
        "published_at": now - timedelta(minutes=2),
        "scored_at": now,
    }


def run(
    url: str, seconds: float, burst: int, batch: int, gap: float, pause: float
) -> dict[str, Any]:
    """Write cycles for ``seconds``; return what was written and how long commits took."""
    from sqlalchemy import func, insert, select

    from scorer.config.settings import database_url
    from scorer.storage.db import make_engine, make_session_factory
    from scorer.storage.store import store_scores
    from scorer.storage.tables import Article, ArticleTicker

    engine = make_engine(database_url(url))
    sessions = make_session_factory(engine)
    rng = random.Random()
    commits: list[float] = []
    cycles = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cycles += 1
        now = datetime.now(UTC)
        with sessions.begin() as session:  # the ingest step: the cycle's new articles
            first = int(session.scalar(select(func.max(Article.id))) or 0) + 1
            ids = list(range(first, first + burst * batch))
            pairs = [(i, rng.choice(TICKERS)) for i in ids]
            session.execute(
                insert(Article),
                [
                    {
                        "id": i,
                        "dedup_key": f"writer-{i}",
                        "title": f"{t} story {i}",
                        "url": None,
                        "source": "Writer Wire",
                        "published_at": now - timedelta(minutes=2),
                        "seen_at": now - timedelta(minutes=1),
                    }
                    for i, t in pairs
                ],
            )
            session.execute(
                insert(ArticleTicker), [{"article_id": i, "ticker": t} for i, t in pairs]
            )
            if engine.dialect.name == "postgresql":  # ids given explicitly: move the sequence
                session.execute(
                    select(func.setval(func.pg_get_serial_sequence("articles", "id"), ids[-1]))
                )
        for k in range(burst):  # the score step: one transaction per batch
            if time.monotonic() >= deadline:
                break
            started = time.monotonic()
            chunk = pairs[k * batch : (k + 1) * batch]
            with sessions.begin() as session:
                store_scores(session, [_event(rng, i, t, datetime.now(UTC)) for i, t in chunk])
            commits.append(time.monotonic() - started)
            time.sleep(max(0.0, min(gap, deadline - time.monotonic())))
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
    engine.dispose()
    commits.sort()
    return {
        "cycles": cycles,
        "batches": len(commits),
        "events": len(commits) * batch,
        "commit_ms_p50": round(1000 * commits[len(commits) // 2], 1) if commits else None,
        "commit_ms_max": round(1000 * commits[-1], 1) if commits else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the database (DATABASE_URL form)")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--burst", type=int, default=8, help="score batches per cycle")
    parser.add_argument("--batch", type=int, default=64, help="pairs per batch (SCORE_BATCH_SIZE)")
    parser.add_argument(
        "--gap", type=float, default=0.25, help="seconds between batches (the model's time)"
    )
    parser.add_argument(
        "--pause", type=float, default=3.0, help="seconds between cycles (POLL_INTERVAL)"
    )
    args = parser.parse_args()
    done = run(args.url, args.seconds, args.burst, args.batch, args.gap, args.pause)
    print(json.dumps(done), flush=True)


if __name__ == "__main__":
    main()
