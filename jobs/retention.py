"""Retention: keep the database inside its plan while the panel's history survives.

Detail (articles, their tickers, score events) is kept ``detail_days``; 15m buckets
``rollup_15m_days``, 1h buckets ``rollup_1h_days``, session buckets for ever. When
the database passes ``PRUNE_AT`` of a limit (storage budget or row cap), the
oldest detail goes sooner, down to ``TARGET``; under a row cap that detail alone
cannot meet, the oldest 15m then 1h buckets go too. From ``WARN_AT`` it warns, in
the log and through ``report`` (Sentry).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from jobs.job import Context, Job, Schedule
from scorer.config.settings import Settings
from scorer.storage import capacity
from scorer.storage.db import meta_get, meta_set
from scorer.storage.store import delete_detail_before, delete_rollups_before, oldest_detail_cutoff
from scorer.storage.tables import ScoreRollup

log = logging.getLogger(__name__)
WARN_AT, PRUNE_AT, TARGET = 70.0, 90.0, 60.0  # percent of a limit
BUDGET_MARK = "budget_pruned_at_bytes"  # meta: the size when detail was last pruned for it


@dataclass(frozen=True)
class RetentionPolicy:
    detail_days: int = 90
    rollup_15m_days: int = 31
    rollup_1h_days: int = 365
    budget: int | None = 1024**3  # bytes; None or 0: no budget
    row_limit: int | None = None


@dataclass
class RetentionResult:
    articles: int = 0  # deleted, with their tickers
    events: int = 0  # score events deleted
    rollups: dict[str, int] = field(default_factory=dict)  # interval -> buckets deleted
    pruned_for_limits: bool = False  # detail went sooner than detail_days
    usage: dict[str, object] = field(default_factory=dict)  # capacity.Usage.as_json()
    warned: bool = False


def run_retention(
    sessions: sessionmaker[Session],
    policy: RetentionPolicy,
    *,
    now: datetime,
    report: Callable[[str], None] | None = None,
) -> RetentionResult:
    """One pass; each step commits on its own, so a crash keeps what was done."""
    result = RetentionResult()
    with sessions.begin() as session:
        _add(result, delete_detail_before(session, now - timedelta(days=policy.detail_days)))
        for interval, days in (("15m", policy.rollup_15m_days), ("1h", policy.rollup_1h_days)):
            result.rollups[interval] = delete_rollups_before(
                session, interval, now - timedelta(days=days)
            )
    usage = _measure(sessions, policy)
    for _ in range(8):  # each round prunes a share; a few rounds at most
        if not _over(sessions, usage):
            break
        with sessions.begin() as session:
            if not _prune_share(session, result, usage, now):
                break
            if usage.bytes_percent is not None and usage.bytes_percent >= PRUNE_AT:
                meta_set(session, BUDGET_MARK, str(usage.bytes))
        result.pruned_for_limits = True
        usage = _measure(sessions, policy)
    result.usage = usage.as_json()
    if usage.percent >= WARN_AT:
        result.warned = True
        message = (
            f"database at {usage.percent:.0f}% of its plan "
            f"(bytes {usage.bytes:,} of {usage.budget or 'no budget'}, "
            f"rows {usage.rows if usage.rows is not None else '-'} of "
            f"{usage.row_limit or 'no limit'}): detail is pruned from {PRUNE_AT:.0f}%"
        )
        log.warning(message)
        if report is not None:
            report(message)
    return result


def _add(result: RetentionResult, deleted: tuple[int, int]) -> None:
    result.articles += deleted[0]
    result.events += deleted[1]


def _measure(sessions: sessionmaker[Session], policy: RetentionPolicy) -> capacity.Usage:
    with sessions() as session:
        return capacity.measure(session, policy.budget, policy.row_limit)


def _over(sessions: sessionmaker[Session], usage: capacity.Usage) -> bool:
    """Past PRUNE_AT of a limit. On Postgres a DELETE frees space for reuse but the
    size stays, so the budget only asks for more once the size grew past where it
    was when detail was last pruned for it."""
    rows = usage.rows_percent is not None and usage.rows_percent >= PRUNE_AT
    size = usage.bytes_percent is not None and usage.bytes_percent >= PRUNE_AT
    if size:
        with sessions() as session:
            mark = meta_get(session, BUDGET_MARK)
        size = mark is None or usage.bytes > int(mark)
    return rows or size


def _prune_share(
    session: Session, result: RetentionResult, usage: capacity.Usage, now: datetime
) -> bool:
    """Delete the oldest share of detail that should bring usage down to TARGET; with
    no detail left, the oldest fine buckets under a row cap. False: nothing to delete."""
    share = min(max(1 - TARGET / max(usage.percent, 1e-9), 0.05), 1.0)
    cutoff = oldest_detail_cutoff(session, share)
    # Too few articles to take a share of: they all go.
    deleted = delete_detail_before(session, cutoff or now + timedelta(seconds=1))
    if deleted != (0, 0):
        _add(result, deleted)
        return True
    if usage.rows_percent is None or usage.rows_percent < PRUNE_AT:
        return False
    for interval in ("15m", "1h"):  # sessions are kept for ever
        span = session.execute(
            select(func.min(ScoreRollup.bucket_start), func.max(ScoreRollup.bucket_start)).where(
                ScoreRollup.interval == interval
            )
        ).one()
        if span[0] is not None:
            before = span[0] + (span[1] - span[0]) * share + timedelta(seconds=1)
            gone = delete_rollups_before(session, interval, before)
            result.rollups[interval] = result.rollups.get(interval, 0) + gone
            return gone > 0
    return False


def policy_of(settings: Settings) -> RetentionPolicy:
    """The retention policy the settings describe."""
    return RetentionPolicy(
        detail_days=settings.detail_retention_days,
        rollup_15m_days=settings.rollup_retention_15m_days,
        rollup_1h_days=settings.rollup_retention_1h_days,
        budget=settings.db_size_budget or None,
        row_limit=settings.db_row_limit,
    )


def _run(context: Context, now: datetime) -> RetentionResult:
    return run_retention(
        context.sessions, policy_of(context.settings), now=now, report=context.report
    )


JOB = Job("retention", Schedule.DAILY, _run)
