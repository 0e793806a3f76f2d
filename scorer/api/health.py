"""``GET /v1/health``: public, cheap, never waits on the model or a slow query."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bottle
from sqlalchemy.orm import Session, sessionmaker

from scorer import __version__
from scorer.api.http import send_json
from scorer.api.workers import WorkerBoard
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.scoring.model.base import runtime_health
from scorer.storage.capacity import measure
from scorer.storage.outage import Outage, OutageWatch, classify
from scorer.storage.store import open_jobs, queue_depth

log = logging.getLogger(__name__)

# What health's ``database`` says: ok, an outage's kind, or a failure that is no outage.
DATABASE_STATES = ("ok", *(outage.value for outage in Outage), "error")


def install(
    app: bottle.Bottle,
    settings: Settings,
    *,
    sessions: sessionmaker[Session],
    loader: ModelLoader | WorkerBoard,  # a board on a read-only web dyno: the workers' model
    role: Callable[[], str],
    clock: Callable[[], float],
    outages: OutageWatch,
) -> None:
    started = clock()
    probe = DatabaseProbe(sessions, clock=clock, outages=outages)
    usage = _CachedUsage(
        sessions, settings.db_size_budget or None, settings.db_row_limit, outages=outages
    )

    @app.get("/v1/health")
    def health() -> str:
        bottle.response.set_header("Cache-Control", "no-store")
        classifier = loader.classifier
        if classifier is None:
            body: dict[str, Any] = {"status": "warming_up", "model_loaded": False}
            if loader.reason:
                body["reason"] = public_text(loader.reason)
            if isinstance(loader, WorkerBoard):
                body.update(loader.not_ready())
            return send_json(body, status=503)
        depth = probe.get(classifier.model_id, classifier.revision)
        down = probe.down_for()
        fields, warnings = runtime_health(classifier)
        body = {
            "status": "ok",
            "model_loaded": True,
            "model_id": public_model_id(classifier.model_id),
            "model_sha": classifier.revision,
            "queue_depth": depth,
            "uptime_seconds": int(clock() - started),
            "version": __version__,
            "env": settings.env,
            "flag_reasonator": settings.flag_reasonator,
            "role": role(),
            "database": probe.state,
            "storage": usage.get(),
            **fields,
            **({"warnings": warnings} if warnings else {}),
        }
        if down is not None and down >= settings.db_outage_grace:
            # Past the grace period a real outage, not a blip: 503, so the keep-alive's
            # escalation fires; it turns 200 again on the first probe that succeeds.
            body["status"] = "degraded"
            body["reason"] = probe.reason(down)
            return send_json(body, status=503)
        return send_json(body)


def public_model_id(model_id: str) -> str:
    """A hub id as it is; a local model directory by its name only: public health
    shows no filesystem path."""
    path = Path(model_id)
    return path.name if path.is_absolute() or path.is_dir() else model_id


_ABSOLUTE_PATH = re.compile(r"(?<![\w:/])(?:/[^\s'\"/,;:]+)+/?")


def public_text(text: str) -> str:
    """A message with every absolute path cut to its last part (``/app/var/model`` ->
    ``model``): loading errors name directories, public health must not."""
    return _ABSOLUTE_PATH.sub(lambda m: Path(m.group(0)).name or "/", text)


class DatabaseProbe:
    """Queue depth for health, and whether the database answers (``state``: ``ok``,
    ``unreachable``, ``no_schema``, or ``error`` for a failure that is no outage),
    refreshed at most every ``ttl`` seconds in a background thread. A request waits at
    most ``wait`` seconds for a refresh, then answers with the last values: health never
    waits on a dead or slow database. A failure is told to ``outages`` (one log line
    per change of state); only a failure that is no outage logs its traceback, once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Callable[[], float],
        outages: OutageWatch | None = None,
        ttl: float = 5.0,
        wait: float = 0.5,
    ) -> None:
        self._sessions, self._clock, self._ttl, self._wait = sessions, clock, ttl, wait
        self._outages = outages or OutageWatch(clock=clock)
        self._lock = threading.Lock()
        self._value: dict[str, int | None] = {"pending": None, "rescore_jobs": None}
        self._at = float("-inf")
        self._running: threading.Thread | None = None
        self.down_since: float | None = None  # clock() of the first failure in a row
        self.state = "ok"

    def get(self, model_id: str, revision: str) -> dict[str, int | None]:
        with self._lock:
            due = self._clock() - self._at >= self._ttl
            if due and self._running is None:
                self._running = threading.Thread(
                    target=self._refresh, args=(model_id, revision), daemon=True
                )
                self._running.start()
            running = self._running
        if running is not None:
            running.join(self._wait)
        return self._value

    def down_for(self) -> float | None:
        """Seconds the database has been unreachable, or None while it answers."""
        since = self.down_since
        return None if since is None else max(0.0, self._clock() - since)

    def reason(self, down: float) -> str:
        """Health's reason once the database has been down past the grace period."""
        if self.state == Outage.NO_SCHEMA.value:
            return f"database without schema for {int(down)} s: {Outage.NO_SCHEMA.reason}"
        if self.state == "error":
            return f"database probe failing for {int(down)} s (see the log)"
        return f"database unreachable for {int(down)} s"

    def _refresh(self, model_id: str, revision: str) -> None:
        try:
            with self._sessions() as session:
                self._value = {
                    "pending": queue_depth(session, model_id, revision),
                    "rescore_jobs": open_jobs(session),
                }
            self.down_since, self.state = None, "ok"
            self._outages.succeeded()
        except Exception as exc:  # health answers whatever the database does
            self._value = {"pending": None, "rescore_jobs": None}
            outage = classify(exc)
            if outage is not None:
                self._outages.failed(outage, exc, "health")
            elif self.state != "error":  # a bug, not an outage: its traceback, once
                log.error("health's database probe failed", exc_info=exc)
            self.state = "error" if outage is None else outage.value
            if self.down_since is None:
                self.down_since = self._clock()
        finally:
            with self._lock:
                self._at = self._clock()
                self._running = None


class _CachedUsage:
    """The database against its plan for health, refreshed at most once a minute (the
    size is cheap to ask, the row count less so) and never fatal."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        budget: int | None,
        row_limit: int | None,
        *,
        outages: OutageWatch,
        ttl: float = 60.0,
    ) -> None:
        self._sessions, self._budget, self._row_limit, self._ttl = (
            sessions,
            budget,
            row_limit,
            ttl,
        )
        self._outages = outages
        self._lock = threading.Lock()
        self._value: dict[str, object] | None = None
        self._at = float("-inf")
        self._failing = False  # a failure that is no outage was logged: not again

    def get(self) -> dict[str, object] | None:
        now = time.monotonic()
        if now - self._at < self._ttl or not self._lock.acquire(blocking=False):
            return self._value
        try:
            with self._sessions() as session:
                self._value = measure(session, self._budget, self._row_limit).as_json()
            self._failing = False
        except Exception as exc:  # health must answer even when the database does not
            self._value = None
            outage = classify(exc)
            if outage is not None:  # the probe says when it is back
                self._outages.failed(outage, exc, "health")
            elif not self._failing:
                log.error("database usage unavailable", exc_info=exc)
                self._failing = True
        finally:
            self._at = now
            self._lock.release()
        return self._value
