"""The web process: one Service per gunicorn worker, built on import of
``scorer.process.wsgi`` (after gunicorn forked) and stopped by gunicorn's ``worker_exit``.

The worker serves at once. When its settings are complete (no vault, or the vault
has answered) it builds the Service there and then; otherwise a ``Booting`` app
answers health 503 with the reason, the OpenAPI document, and the read API when the
environment holds the token (else 401) while the vault is read in the background with
backoff (``scorer/process/boot.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from scorer.config.settings import ConfigError, Purpose, Settings, check_tokens, load_settings
from scorer.market.crons import CronReporter, sentry_capture
from scorer.ops.observability import configure_logging, init_sentry
from scorer.process.boot import Booting, WSGIApp
from scorer.process.service import Service
from scorer.scoring.model import Classifier

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
    if not bootstrap.vault_configured:
        _booting = Booting(load, start_service)
    else:
        interim, release = interim_app(bootstrap)
        _booting = Booting(
            load, start_service, vault_host=vault_host(bootstrap), interim=interim, release=release
        )
    _booting.start()
    return _booting


def vault_host(settings: Settings) -> str:
    """The vault's host (and port, when one is given) for messages: never a credential."""
    parts = urlsplit(settings.infisical_api_url)
    host = parts.hostname or "the vault"
    return f"{host}:{parts.port}" if parts.port else host


def interim_app(bootstrap: Settings) -> tuple[WSGIApp | None, Callable[[], None]]:
    """The read API over the environment's settings while the vault is read, when the
    environment holds a valid token (it wins over the vault's, so it is the token the
    real app will take too): the reads need only it and the database, whose URL never
    comes from the vault. No model, no scheduler. Returns the app and what frees it."""
    if not bootstrap.service_tokens:
        return None, lambda: None
    try:
        check_tokens(bootstrap)
    except ConfigError:  # the real load says so, in health's reason
        return None, lambda: None
    from scorer.api import create_app
    from scorer.scoring.model import ModelLoader
    from scorer.storage.db import make_engine

    engine = make_engine(bootstrap.database_url)
    never = ModelLoader(_no_model)  # never started: reads need no model
    app = create_app(bootstrap, engine=engine, loader=never, role=lambda: "reader")
    return app, engine.dispose


def _no_model() -> Classifier:
    raise RuntimeError("the interim app loads no model")


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
