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

    @app.get("/v1/health")
    def health() -> str:
        bottle.response.set_header("Cache-Control", "no-store")
        classifier = loader.classifier
        if classifier is None:
            body: dict[str, Any] = {"status": "warming_up", "model_loaded": False}
            if loader.reason:
                body["reason"] = loader.reason
            return send_json(body, status=503)
        artifact, warnings = artifact_summary(getattr(classifier, "manifest", None))
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
                "artifact": artifact,
                **({"warnings": warnings} if warnings else {}),
            }
        )


def artifact_summary(manifest: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """What health shows of the served artifact: the fidelity gate's figures, and a
    warning when it was built without the gate. None when no artifact is served."""
    if manifest is None:
        return None, ["no prepared artifact: serving with transformers (run prepare-model)"]
    fidelity = manifest.get("fidelity") or {"gate": "not recorded"}
    summary = {
        key: fidelity[key]
        for key in ("gate", "agreement", "mean_abs_diff", "sentences", "fp32_fraction")
        if key in fidelity
    }
    warnings = []
    if summary["gate"] == "skipped":
        warnings.append(
            "artifact built with --no-gate: its fidelity to the fp32 model was not measured"
        )
    elif summary["gate"] != "passed":
        warnings.append("artifact predates the fidelity gate: rebuild it with prepare-model")
    return summary, warnings


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
