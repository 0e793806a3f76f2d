"""Health on a read-only web dyno (``WEB_ROLE=read``): the model is the workers'.

Such a dyno loads no model, but the keep-alive and the runbook read its
``/v1/health``, whose contract says whether the deployment can score. So the
answer comes from the workers' heartbeats (``scorer/storage/heartbeat.py``):
``model_loaded``, ``model_id``, ``model_sha`` and the runtime's figures are those of
the newest live worker with a loaded model, ``queue_depth`` is counted for its
revision, and ``workers`` lists every live one. ``WorkerBoard`` stands where a web
process with a model has its ``ModelLoader``: 503 ``warming_up`` until a worker with
a loaded model has been seen, 200 while one is alive, 503 ``degraded`` once none has
been seen for ``WORKER_GRACE`` seconds. The rows are read in the background, at most
every ``ttl`` seconds: health never waits on the database for long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from scorer.scoring.model.base import LABELS, RuntimeHealth
from scorer.storage.heartbeat import last_loaded, runtime_of, seen_since
from scorer.storage.tables import Worker

log = logging.getLogger(__name__)

ALIVE_BEATS = 4  # a worker is alive while its last heartbeat is at most this many old


@dataclass
class RemoteModel:
    """A worker's loaded model as health shows it; this process cannot run it."""

    model_id: str
    revision: str
    runtime: dict[str, Any]
    workers: list[dict[str, Any]]
    labels: list[str] = field(default_factory=lambda: list(LABELS))

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("a read-only web process holds no model: workers score")

    def health(self) -> RuntimeHealth:
        fields = dict(self.runtime)
        warnings = fields.pop("warnings", [])
        return {**fields, "workers": self.workers}, list(warnings)


@dataclass(frozen=True)
class _Seen:
    rows: list[Worker]
    last_loaded: datetime | None


class WorkerBoard:
    """The workers as the web dyno last read them; a ``ModelLoader`` look-alike for
    health (``classifier``, ``reason``) plus ``not_ready`` for the 503 body."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        interval: int,
        grace: int,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
        ttl: float = 2.0,
        wait: float = 0.5,
    ) -> None:
        self._sessions, self._wall, self._clock = sessions, wall, clock
        self._alive = timedelta(seconds=ALIVE_BEATS * interval)
        self._grace = timedelta(seconds=grace)
        self._ttl, self._wait = ttl, wait
        self._started = wall()
        self._seen = _Seen([], None)
        # The last heartbeat of a live worker with a model this process saw: a worker
        # that stopped cleanly has deleted its row, yet was there a moment ago.
        self._last_ok: datetime | None = None
        self._error: str | None = None
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._running: threading.Thread | None = None

    @property
    def classifier(self) -> RemoteModel | None:
        """The newest live worker's model (the last one started), or None."""
        rows = self._read()
        now = self._wall()
        alive = [row for row in rows if now - row.last_seen <= self._alive]
        loaded = [row for row in alive if row.model_id is not None]
        if not loaded:
            return None
        self._last_ok = max(row.last_seen for row in loaded)
        newest = max(loaded, key=lambda row: row.started_at)
        assert newest.model_id is not None and newest.model_revision is not None
        return RemoteModel(
            newest.model_id, newest.model_revision, runtime_of(newest), _listed(alive, now)
        )

    @property
    def reason(self) -> str | None:
        if self._error is not None:
            return self._error
        return f"no worker with a loaded model seen for {int(self._waited().total_seconds())} s"

    def not_ready(self) -> dict[str, Any]:
        """What a 503 adds: ``degraded`` once none was seen for the grace time."""
        now = self._wall()
        alive = [row for row in self._seen.rows if now - row.last_seen <= self._alive]
        status = "degraded" if self._waited() >= self._grace else "warming_up"
        return {"status": status, "workers": _listed(alive, now)}

    def _waited(self) -> timedelta:
        """Since a worker with a model was last seen, or since this process started."""
        marks = [self._started, self._seen.last_loaded, self._last_ok]
        since = max(mark for mark in marks if mark is not None)
        return max(self._wall() - since, timedelta(0))

    def _read(self) -> list[Worker]:
        with self._lock:
            if self._clock() - self._at >= self._ttl and self._running is None:
                self._running = threading.Thread(target=self._refresh, daemon=True)
                self._running.start()
            running = self._running
        if running is not None:
            running.join(self._wait)
        return self._seen.rows

    def _refresh(self) -> None:
        try:
            with self._sessions() as session:
                rows = seen_since(session, self._wall() - self._alive)
                session.expunge_all()
                self._seen = _Seen(rows, last_loaded(session))
            self._error = None
        except Exception as exc:  # noqa: BLE001 - health answers whatever the database does
            log.warning("worker heartbeats unreadable: %s", type(exc).__name__)
            self._error = f"worker heartbeats unreadable: {type(exc).__name__}"
        finally:
            with self._lock:
                self._at = self._clock()
                self._running = None


def _listed(rows: list[Worker], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "name": row.name,
            "role": row.role,
            "model_loaded": row.model_id is not None,
            "model_sha": row.model_revision,
            "seen_seconds_ago": round(max((now - row.last_seen).total_seconds(), 0.0), 1),
        }
        for row in sorted(rows, key=lambda row: row.name)
    ]
