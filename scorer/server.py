"""The web process: builds the service once per gunicorn worker, then loads the
model and starts the scheduler in the background so the port is served at once."""

from __future__ import annotations

import logging

import bottle

from scorer.config import Settings
from scorer.runtime import configure_logging, init_sentry
from scorer.schedule import make_scheduler
from scorer.service import Service

log = logging.getLogger(__name__)

_service: Service | None = None
_scheduler = None


def build_app() -> bottle.Bottle:
    """Called on import of ``scorer.wsgi`` inside the worker (not at master import)."""
    global _service, _scheduler
    configure_logging()
    settings = Settings.from_env()
    init_sentry(settings)
    _service = Service(settings)
    _service.loader.start()
    _scheduler = make_scheduler(
        _service.run_cycle, interval=settings.poll_interval, window=settings.window
    )
    _scheduler.start()
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
    """gunicorn's worker_exit hook: finish the current batch, keep the rest pending."""
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
    if _service is not None:
        _service.shutdown()
