"""Heartbeats: each scoring process keeps one ``workers`` row saying what model it
loaded, whether it holds the scheduler lock, and when it was last seen.

Why a table: a read-only web dyno loads no model, yet its public health must say
whether the deployment can score (the runbook's contract: ``model_loaded``,
``model_sha``). The workers share only the database with it, so they write what
health needs there. Rows of processes that stopped cleanly are deleted; rows of
crashed ones age out (``prune``), so the table stays a handful of rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scorer.storage.tables import Worker

# A crashed process's row is deleted after this long (health has long called it gone).
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Beat:
    """What one process says about itself."""

    name: str  # its scored_by
    role: str  # "scheduler" while it holds the scheduler lock, else "scorer"
    model_id: str | None  # None while the model loads
    model_revision: str | None
    runtime: dict[str, Any]  # the runtime's health fields (artifact figures)


def beat(session: Session, beat: Beat, *, started_at: datetime, now: datetime) -> None:
    """Insert or refresh this process's row, and forget rows of long-dead processes."""
    values = {
        "name": beat.name,
        "role": beat.role,
        "model_id": beat.model_id,
        "model_revision": beat.model_revision,
        "runtime": json.dumps(beat.runtime, separators=(",", ":"), default=str),
        "started_at": started_at,
        "last_seen": now,
    }
    table = cast(Table, Worker.__table__)
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table).values(values)
    changed = {k: v for k, v in values.items() if k != "name"}
    session.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=changed))
    session.execute(delete(Worker).where(Worker.last_seen < now - FORGET_AFTER))


def forget(session: Session, name: str) -> None:
    """A process stopping cleanly removes its row: health stops counting it at once."""
    session.execute(delete(Worker).where(Worker.name == name))


def seen_since(session: Session, since: datetime) -> list[Worker]:
    """Rows last seen at or after ``since``, most recently seen first."""
    stmt = select(Worker).where(Worker.last_seen >= since).order_by(Worker.last_seen.desc())
    return list(session.scalars(stmt))


def last_loaded(session: Session) -> datetime | None:
    """When a process with a loaded model was last seen, whenever that was."""
    stmt = select(Worker.last_seen).where(Worker.model_id.is_not(None))
    return session.scalar(stmt.order_by(Worker.last_seen.desc()).limit(1))


def runtime_of(worker: Worker) -> dict[str, Any]:
    """The runtime fields a row carries (empty if unreadable)."""
    try:
        value = json.loads(worker.runtime or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
