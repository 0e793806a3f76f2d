"""The web process: one Service per gunicorn worker, built on import of
``scorer.process.wsgi`` (after gunicorn forked) and stopped by gunicorn's ``worker_exit``.

The worker serves at once. When its settings are complete (no vault, or the vault
has answered) it builds the Service there and then; otherwise a ``Booting`` app
answers health 503 with the reason, the other public routes 503 and everything else
401 while the vault is read in the background with backoff (``scorer/process/boot.py``).
"""

from __future__ import annotations

import logging

from scorer.config.settings import Purpose, Settings, load_settings
from scorer.market.crons import CronReporter, sentry_capture
from scorer.ops.observability import configure_logging, init_sentry
from scorer.process.boot import Booting, WSGIApp
from scorer.process.service import Service

log = logging.getLogger(__name__)

_service: Service | None = None  # this worker's; gunicorn's hooks can only find it here
_booting: Booting | None = None


def build_app(settings: Settings | None = None) -> WSGIApp:
    """Build this worker's app and start its service in the background; the port is
    served at once while the vault is read, the model loads and the scheduler starts."""
    global _booting
    configure_logging()
    if settings is not None:
        return start_service(settings)
    # A malformed variable stops the worker here; the vault is not read yet.
    bootstrap = load_settings(Purpose.BOOTSTRAP)
    if bootstrap.vault_configured:
        log.info(
            "reading settings from the vault: environment=%s folder=/rack/ (in the background)",
            bootstrap.vault_environment,
        )

    def load() -> Settings:
        return load_settings(Purpose.WEB)

    # Without a vault, settings are built in the background too: a token missing in
    # production answers health 503 with the reason instead of crash-looping the dyno.
    _booting = Booting(load, start_service)
    _booting.start()
    return _booting


def start_service(settings: Settings) -> WSGIApp:
    """Start this worker's Service with complete settings and return its WSGI app."""
    global _service
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
        len(settings.feed_specs),
        len(settings.watchlist),
        settings.window.name,
    )
    app: WSGIApp = _service.app()
    return app


def shutdown() -> None:
    """gunicorn's worker_exit hook: stop booting, finish the current batch, keep the rest
    pending, then hand the scheduler lock to the next process."""
    if _booting is not None:
        _booting.stop()
    if _service is not None:
        _service.stop()
