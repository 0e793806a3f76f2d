"""Several scorers on one queue: on Postgres each batch is claimed (``FOR UPDATE SKIP
LOCKED``), so concurrent workers never run a pair through the model twice, a claim
ends with its transaction, and a re-score job is done only when no worker holds any
of its pairs. SQLite keeps one writer: a plain read."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from jobs.score import score_pending
from scorer.scoring.sentiment import METHOD
from scorer.storage.store import claim_pending, open_jobs, queue_rescore
from scorer.storage.tables import ScoreEvent
from tests.helpers.score_data import add_articles

NOW = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
PUBLISHED = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


class CountingClassifier:
    """Counts each sentence it is asked to score; the first call of each thread waits
    at ``gate`` (if any), so that several workers hold their claims at the same time."""

    def __init__(self, revision: str = "r1", gate: threading.Barrier | None = None) -> None:
        self.labels = ["positive", "negative", "neutral"]
        self.model_id, self.revision = "test/model", revision
        self.passes: Counter[str] = Counter()
        self._gate, self._seen = gate, set[int]()
        self._mutex = threading.Lock()

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        with self._mutex:
            self.passes.update(texts)
            first = threading.get_ident() not in self._seen
            self._seen.add(threading.get_ident())
        if first and self._gate is not None:
            self._gate.wait(30)  # broken (BrokenBarrierError) if a worker was blocked
        return np.tile(np.array([0.7, 0.2, 0.1]), (len(texts), 1))


@pytest.fixture
def on_postgres(database_url: str) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("claims are Postgres's: SQLite has one writer")


def _scored_by(engine: Engine) -> Counter[str | None]:
    with engine.connect() as conn:
        rows = conn.execute(select(ScoreEvent.scored_by, func.count()).group_by("scored_by"))
        return Counter({by: n for by, n in rows})


def test_three_concurrent_workers_score_every_pair_once_with_one_model_pass_each(
    on_postgres: None, engine: Engine, sessions
) -> None:  # type: ignore[no-untyped-def]
    ids = add_articles(sessions, 60, "AAPL", PUBLISHED)
    model = CountingClassifier(gate=threading.Barrier(3))
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            score_pending(sessions, model, now=lambda: NOW, batch_size=4, scored_by=name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    # All three held a claim at once (the gate), and no sentence went through twice.
    assert model.passes == Counter({f"story {i}": 1 for i in ids})
    by = _scored_by(engine)
    assert sum(by.values()) == len(ids) and set(by) == {"w0", "w1", "w2"}


def test_a_claim_is_skipped_by_others_and_released_with_its_transaction(
    on_postgres: None, sessions
) -> None:  # type: ignore[no-untyped-def]
    add_articles(sessions, 6, "AAPL", PUBLISHED)
    with sessions.begin() as first:
        mine, claimed = claim_pending(first, "test/model", "r1", METHOD, 4)
        assert len(mine) == claimed == 4
        with sessions.begin() as second:
            theirs, _ = claim_pending(second, "test/model", "r1", METHOD, 4)
            assert len(theirs) == 2 and not set(theirs) & set(mine)
        first.rollback()  # a crash: the transaction ends without storing anything
    with sessions.begin() as third:
        again, _ = claim_pending(third, "test/model", "r1", METHOD, 10)
    assert set(mine) <= set(again) and len(again) == 6


def test_a_rescore_job_stays_open_while_another_worker_holds_its_last_pairs(
    on_postgres: None, sessions
) -> None:  # type: ignore[no-untyped-def]
    add_articles(sessions, 3, "AAPL", PUBLISHED)
    with sessions.begin() as session:
        queue_rescore(session, "test/model", "r2", since=PUBLISHED, until=None, now=NOW)
    holding = threading.Event()
    release = threading.Event()

    class Holding(CountingClassifier):
        def predict_proba(self, texts: list[str]) -> np.ndarray:
            holding.set()
            assert release.wait(30)
            return super().predict_proba(texts)

    holder = threading.Thread(
        target=score_pending,
        args=(sessions, Holding("r2")),
        kwargs={"now": lambda: NOW, "batch_size": 10},
    )
    holder.start()
    try:
        assert holding.wait(30)
        other = CountingClassifier("r2")
        done = score_pending(sessions, other, now=lambda: NOW, batch_size=10)
        # Nothing was free to claim, and the holder's pairs are still pending.
        assert done.events == 0 and not other.passes
        with sessions() as session:
            assert open_jobs(session) == 1
    finally:
        release.set()
        holder.join(30)
    with sessions() as session:
        assert open_jobs(session) == 0  # the holder finished it once nothing was left


def test_on_sqlite_the_single_writer_reads_its_batch_plainly(database_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite path")
    add_articles(sessions, 3, "AAPL", PUBLISHED)
    model = CountingClassifier()
    done = score_pending(sessions, model, now=lambda: NOW, batch_size=2, scored_by="solo")
    assert done.events == 3 and done.batches == 2
    assert sum(model.passes.values()) == 3
