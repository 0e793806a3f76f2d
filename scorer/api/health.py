"""``GET /v1/health``: public, cheap, never waits on the model or a slow query."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import bottle
from sqlalchemy.orm import Session, sessionmaker

from scorer import __version__
from scorer.api.http import send_json
from scorer.capacity import measure
from scorer.config import Settings
from scorer.model import ModelLoader
from scorer.store import open_jobs, queue_depth

log = logging.getLogger(__name__)


def install(
    app: bottle.Bottle,
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    loader: ModelLoader,
    role: Callable[[], str],
    clock: Callable[[], float],
) -> None:
    started = clock()
    depth = _CachedDepth(sessions)
    usage = _CachedUsage(sessions, settings.db_size_budget or None, settings.db_row_limit)

    @app.get("/v1/health")
    def health() -> str:
        bottle.response.set_header("Cache-Control", "no-store")
        classifier = loader.classifier
        if classifier is None:
            body: dict[str, Any] = {"status": "warming_up", "model_loaded": False}
            if loader.reason:
                body["reason"] = loader.reason
            return send_json(body, status=503)
        return send_json(
            {
                "status": "ok",
                "model_loaded": True,
                "model_id": classifier.model_id,
                "model_sha": classifier.revision,
                "queue_depth": depth.get(classifier.model_id, classifier.revision),
                "uptime_seconds": int(clock() - started),
                "version": __version__,
                "env": settings.env,
                "flag_reasonator": settings.flag_reasonator,
                "role": role(),
                "database": usage.get(),
            }
        )


class _CachedDepth:
    """Queue depth for health, refreshed at most every few seconds and never fatal."""

    def __init__(self, sessions: sessionmaker[Session], ttl: float = 5.0) -> None:
        self._sessions, self._ttl = sessions, ttl
        self._lock = threading.Lock()
        self._value: dict[str, int | None] = {"pending": None, "rescore_jobs": None}
        self._at = float("-inf")

    def get(self, model_id: str, revision: str) -> dict[str, int | None]:
        now = time.monotonic()
        if now - self._at < self._ttl or not self._lock.acquire(blocking=False):
            return self._value  # another thread is counting: answer at once
        try:
            with self._sessions() as session:
                self._value = {
                    "pending": queue_depth(session, model_id, revision),
                    "rescore_jobs": open_jobs(session),
                }
        except Exception:  # health must answer even when the database does not
            log.warning("queue depth unavailable", exc_info=True)
            self._value = {"pending": None, "rescore_jobs": None}
        finally:
            self._at = now
            self._lock.release()
        return self._value


class _CachedUsage:
    """The database against its plan for health, refreshed at most once a minute (the
    size is cheap to ask, the row count less so) and never fatal."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        budget: int | None,
        row_limit: int | None,
        ttl: float = 60.0,
    ) -> None:
        self._sessions, self._budget, self._row_limit, self._ttl = (
            sessions,
            budget,
            row_limit,
            ttl,
        )
        self._lock = threading.Lock()
        self._value: dict[str, object] | None = None
        self._at = float("-inf")

    def get(self) -> dict[str, object] | None:
        now = time.monotonic()
        if now - self._at < self._ttl or not self._lock.acquire(blocking=False):
            return self._value
        try:
            with self._sessions() as session:
                self._value = measure(session, self._budget, self._row_limit).as_json()
        except Exception:  # health must answer even when the database does not
            log.warning("database usage unavailable", exc_info=True)
            self._value = None
        finally:
            self._at = now
            self._lock.release()
        return self._value
