"""The web process: one Service per gunicorn worker, built on import of
``scorer.wsgi`` (after gunicorn forked) and stopped by gunicorn's ``worker_exit``."""

from __future__ import annotations

import logging

import bottle

from scorer.config import Settings
from scorer.crons import CronReporter, sentry_capture
from scorer.observability import configure_logging, init_sentry
from scorer.process.service import Service

log = logging.getLogger(__name__)

_service: Service | None = None  # this worker's; gunicorn's hooks can only find it here


def build_app(settings: Settings | None = None) -> bottle.Bottle:
    """Build and start this worker's service and return its WSGI app; the port is
    served at once while the model loads and the scheduler starts in the background."""
    global _service
    configure_logging()
    settings = settings or Settings.from_env()
    init_sentry(settings)
    crons = CronReporter(
        settings.window, settings.poll_interval, sentry_capture(bool(settings.sentry_dsn))
    )
    _service = Service(settings, crons=crons)
    _service.start()
    # Counts only: feed URLs may carry API keys in their query strings.
    log.info(
        "service started: env=%s model=%s@%s feeds=%d tickers=%d window=%s",
        settings.env,
        settings.finbert_model,
        settings.finbert_model_sha,
        len(settings.feeds),
        len(settings.watchlist),
        settings.window.name,
    )
    return _service.app()


def shutdown() -> None:
    """gunicorn's worker_exit hook: finish the current batch, keep the rest pending,
    then hand the scheduler lock to the next process."""
    if _service is not None:
        _service.stop()
