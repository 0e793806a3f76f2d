"""Roll-ups kept with the score events: both bases, re-scores, rebuild, concurrency,
and a failed batch leaving neither."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scorer.storage import rollups
from scorer.storage.store import delete_rollups_before, store_scores
from scorer.storage.tables import ScoreEvent, ScoreRollup
from tests.helpers.score_data import add_articles, event, ny, store_rescored


def stored(sessions: sessionmaker[Session]) -> dict[tuple[str, str, str, datetime], dict[str, Any]]:
    with sessions() as session:
        rows = session.scalars(select(ScoreRollup)).all()
        return {
            (r.ticker, r.interval, r.basis, r.bucket_start): {
                "end": r.bucket_end,
                "count": r.count,
                "sum": pytest.approx(r.score_sum, abs=1e-9),
                "min": r.score_min,
                "max": r.score_max,
                "labels": (r.positive, r.negative, r.neutral),
                "weights": (
                    pytest.approx(r.weight_sum, abs=1e-9),
                    pytest.approx(r.weighted_score_sum, abs=1e-9),
                ),
            }
            for r in rows
            if r.count  # a bucket emptied by a re-score is the same as none
        }


def bucket(sessions: sessionmaker[Session], basis: str, interval: str, start: datetime) -> Any:
    with sessions() as session:
        return session.get(ScoreRollup, ("AAPL", interval, basis, start))


def test_a_rescore_moves_published_buckets_but_never_known_ones(
    sessions: sessionmaker[Session],
) -> None:
    # Published Wednesday 15:00 ET, first scored 15:05 with 0.8; re-scored under a new
    # revision on Friday 10:02 with -0.6.
    store_rescored(sessions)

    known = bucket(sessions, "known", "15m", ny(2026, 11, 25, 15, 0))
    assert (known.count, known.score_sum, known.score_min, known.score_max) == (2, 0.9, 0.1, 0.8)
    assert (known.positive, known.neutral, known.negative) == (1, 1, 0)
    # The re-score is not a new pair: nothing on Friday under "known".
    assert bucket(sessions, "known", "session", ny(2026, 11, 27, 9, 30)) is None

    pub = bucket(sessions, "published", "15m", ny(2026, 11, 25, 15, 0))
    assert pub.count == 2 and pub.score_sum == pytest.approx(-0.5)
    assert (pub.score_min, pub.score_max) == (-0.6, 0.1)  # 0.8 is gone, not kept as max
    assert (pub.positive, pub.neutral, pub.negative) == (0, 1, 1)


def test_incremental_roll_ups_equal_a_rebuild_from_the_events(
    sessions: sessionmaker[Session],
) -> None:
    start = ny(2026, 11, 23, 9, 0)
    ids = add_articles(sessions, 60, "AAPL", start)
    scores = [((i * 37) % 19 - 9) / 10 for i in range(60)]
    # Batches over three days, overnight and holiday times included, then a re-score of half.
    # Each event carries its article's published time, as the score job copies it.
    published = {i: start + timedelta(hours=5 * (n // 10)) for n, i in enumerate(ids)}
    for n, chunk in enumerate(range(0, 60, 10)):
        scored = start + timedelta(hours=7 * n)
        with sessions.begin() as session:
            rows = [
                event(ids[i], "AAPL", scores[i], published[ids[i]], scored, "r1")
                for i in range(chunk, chunk + 10)
            ]
            store_scores(session, rows, relevance={(ids[chunk], "AAPL"): 0.25})
    with sessions.begin() as session:
        rows = [
            event(ids[i], "AAPL", -scores[i], published[ids[i]], ny(2026, 11, 27, 11, 0), "r2")
            for i in range(0, 60, 2)
        ]
        store_scores(session, rows)
    incremental = stored(sessions)
    assert incremental, "roll-ups were written"

    with sessions.begin() as session:
        written = rollups.rebuild(session)
    assert written >= len(incremental)
    rebuilt = stored(sessions)
    # The rebuild reads no relevance yet (1.0 for all): compare all but the weights.
    for value in (*incremental.values(), *rebuilt.values()):
        value.pop("weights")
    assert rebuilt == incremental


def test_a_rebuild_since_a_date_keeps_older_buckets(sessions: sessionmaker[Session]) -> None:
    ids = add_articles(sessions, 2, "AAPL", ny(2026, 11, 23, 10, 0))
    with sessions.begin() as session:
        store_scores(
            session,
            [
                event(ids[0], "AAPL", 0.5, ny(2026, 11, 23, 10, 0), ny(2026, 11, 23, 10, 1), "r1"),
                event(ids[1], "AAPL", 0.3, ny(2026, 11, 23, 10, 0), ny(2026, 11, 25, 10, 1), "r1"),
            ],
        )
    before = stored(sessions)
    with sessions.begin() as session:
        session.execute(ScoreRollup.__table__.update().values(count=99))  # type: ignore[attr-defined]
        rollups.rebuild(session, since=ny(2026, 11, 24, 12, 0))
    with sessions() as session:
        counts = dict(
            session.execute(
                select(ScoreRollup.bucket_start, ScoreRollup.count).where(
                    ScoreRollup.interval == "session", ScoreRollup.basis == "known"
                )
            ).all()
        )
    # Monday's session was before 'since' (untouched); Wednesday's was recomputed.
    assert counts == {ny(2026, 11, 23, 9, 30): 99, ny(2026, 11, 25, 9, 30): 1}
    assert before  # sanity: there was something to keep


def test_a_failed_batch_leaves_neither_events_nor_buckets(sessions: sessionmaker[Session]) -> None:
    ids = add_articles(sessions, 1, "AAPL", ny(2026, 11, 23, 10, 0))
    with pytest.raises(RuntimeError), sessions.begin() as session:
        store_scores(
            session,
            [event(ids[0], "AAPL", 0.5, ny(2026, 11, 23, 10, 0), ny(2026, 11, 23, 10, 1), "r1")],
        )
        raise RuntimeError("killed before commit")
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ScoreEvent)) == 0
        assert session.scalar(select(func.count()).select_from(ScoreRollup)) == 0


def _versions(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return {key: value for key, value in session.execute(rollups.VERSIONS).all()}


def test_every_change_to_the_buckets_gives_them_a_new_version(
    sessions: sessionmaker[Session],
) -> None:
    def version() -> tuple[str | None, str | None]:
        """All tickers' version and AAPL's: what a view of AAPL is kept under."""
        versions = _versions(sessions)
        return versions.get(rollups.VERSION_KEY), versions.get(rollups.TICKER_VERSION + "AAPL")

    published = ny(2026, 11, 23, 10, 0)
    ids = add_articles(sessions, 2, "AAPL", published)
    rows = [event(i, "AAPL", 0.5, published, ny(2026, 11, 23, 10, 1), "r1") for i in ids]
    seen = [version()]
    with sessions.begin() as session:
        store_scores(session, rows[:1])
    seen.append(version())
    with sessions.begin() as session:
        assert store_scores(session, rows[:1]) == 0  # a retried batch: nothing changes
    assert version() == seen[-1]
    with sessions.begin() as session:
        store_scores(session, rows[1:])
    seen.append(version())
    with sessions.begin() as session:
        rollups.rebuild(session)
    seen.append(version())
    with sessions.begin() as session:
        assert delete_rollups_before(session, "15m", ny(2026, 11, 1, 0, 0)) == 0
    assert version() == seen[-1]
    with sessions.begin() as session:
        assert delete_rollups_before(session, "15m", ny(2026, 11, 24, 0, 0)) == 2  # both bases
    seen.append(version())
    assert seen[0] == (None, None) and len(set(seen)) == len(seen)


def test_a_batch_renews_the_versions_of_the_tickers_it_scored_only(
    sessions: sessionmaker[Session],
) -> None:
    published = ny(2026, 11, 23, 10, 0)
    aapl = add_articles(sessions, 1, "AAPL", published)
    msft = add_articles(sessions, 1, "MSFT", published, start=2)
    with sessions.begin() as session:
        store_scores(session, [event(msft[0], "MSFT", 0.1, published, published, "r1")])
    before = _versions(sessions)
    with sessions.begin() as session:
        store_scores(session, [event(aapl[0], "AAPL", 0.5, published, published, "r1")])
    after = _versions(sessions)
    assert after[rollups.TICKER_VERSION + "AAPL"] != before.get(rollups.TICKER_VERSION + "AAPL")
    assert after[rollups.TICKER_VERSION + "MSFT"] == before[rollups.TICKER_VERSION + "MSFT"]
    assert rollups.VERSION_KEY not in after  # no rebuild nor retention yet
    with sessions.begin() as session:  # a re-score renews the ticker's version too
        store_scores(session, [event(aapl[0], "AAPL", -0.5, published, published, "r2")])
    assert (
        _versions(sessions)[rollups.TICKER_VERSION + "AAPL"]
        != after[rollups.TICKER_VERSION + "AAPL"]
    )


def _run_threads(targets: list[Any]) -> None:
    errors: list[BaseException] = []

    def guard(target: Any) -> None:
        try:
            target()
        except Exception as exc:  # noqa: BLE001 -- re-raised below: a failed writer fails the test
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    assert not errors, errors


def test_concurrent_writers_lose_no_update(sessions: sessionmaker[Session]) -> None:
    published, scored = ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 10, 3)
    writers, batches, per_batch = 4, 10, 5
    total = writers * batches * per_batch
    ids = add_articles(sessions, total, "AAPL", published)

    def writer(w: int) -> None:
        for b in range(batches):
            first = (w * batches + b) * per_batch
            with sessions.begin() as session:  # its own connection and transaction
                rows = [
                    event(ids[i], "AAPL", 0.5, published, scored, "r1")
                    for i in range(first, first + per_batch)
                ]
                store_scores(session, rows)

    _run_threads([lambda w=w: writer(w) for w in range(writers)])
    for basis in ("known", "published"):
        for interval, start in (
            ("15m", ny(2026, 11, 24, 10, 0)),
            ("session", ny(2026, 11, 24, 9, 30)),
        ):
            row = bucket(sessions, basis, interval, start)
            assert row.count == total and row.score_sum == pytest.approx(0.5 * total)


def test_two_revisions_scoring_the_same_pairs_at_once_count_each_pair_once(
    sessions: sessionmaker[Session],
) -> None:
    published, scored = ny(2026, 11, 24, 10, 0), ny(2026, 11, 24, 10, 3)
    ids = add_articles(sessions, 40, "AAPL", published)

    def writer(rev: str, score: float) -> None:
        for chunk in range(0, 40, 8):
            with sessions.begin() as session:
                rows = [
                    event(i, "AAPL", score, published, scored, rev) for i in ids[chunk : chunk + 8]
                ]
                store_scores(session, rows)

    _run_threads([lambda: writer("rA", 0.5), lambda: writer("rB", -0.5)])
    known = bucket(sessions, "known", "session", ny(2026, 11, 24, 9, 30))
    published_row = bucket(sessions, "published", "session", ny(2026, 11, 24, 9, 30))
    assert known.count == 40 and published_row.count == 40
    with sessions.begin() as session:
        rollups.rebuild(session)
    assert bucket(sessions, "published", "session", ny(2026, 11, 24, 9, 30)).score_sum == (
        pytest.approx(published_row.score_sum)
    )
