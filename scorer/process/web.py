"""The web process: one ``WebProcess`` per gunicorn worker, built on import of
``scorer.process.wsgi`` (after gunicorn forked) and stopped by gunicorn's ``worker_exit``.

The ``WebProcess`` is the WSGI app gunicorn loads, so gunicorn's hooks reach what the
worker holds through ``worker.wsgi`` (no module state). The worker serves at once.
When its settings are complete (no vault, or the vault has answered) it builds the
Service there and then; otherwise a ``Booting`` app answers health 503 with the reason,
the OpenAPI document, and the read API when the environment holds the token (else
401) while the vault is read in the background with backoff (``scorer/process/boot.py``).
``WEB_ROLE`` chooses the Service's role: ``all`` (API, model, scheduler) or ``read`` (the API only).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from scorer.config.settings import ConfigError, Purpose, Settings, check_tokens, load_settings
from scorer.market.crons import CronReporter, sentry_capture
from scorer.ops.observability import configure_logging, init_sentry
from scorer.process.boot import Booting, WSGIApp
from scorer.process.service import Role, Service
from scorer.scoring.model import Classifier

log = logging.getLogger(__name__)


class WebProcess:
    """What one web worker holds: its boot (while the vault is read) and its Service.
    Call it as a WSGI app; ``shutdown`` is gunicorn's worker_exit."""

    def __init__(self) -> None:
        self.booting: Booting | None = None
        self.service: Service | None = None
        self._app: WSGIApp | None = None

    def start(self, settings: Settings | None = None) -> WebProcess:
        """Start serving at once; the vault is read, the model loads and the scheduler
        starts in the background."""
        configure_logging()
        if settings is not None:
            self._app = self.start_service(settings)
            return self
        # A malformed variable stops the worker here; the vault is not read yet.
        bootstrap = load_settings(Purpose.BOOTSTRAP)
        if bootstrap.vault_configured:
            log.info(
                "reading settings from the vault: environment=%s folder=/rack/ (in the background)",
                bootstrap.vault_environment,
            )

        # Without a vault, settings are built in the background too: a token missing in
        # production answers health 503 with the reason instead of crash-looping the dyno.
        def load() -> Settings:
            return load_settings(Purpose.WEB)

        if not bootstrap.vault_configured:
            self.booting = Booting(load, self.start_service)
        else:
            interim, release = interim_app(bootstrap)
            self.booting = Booting(
                load,
                self.start_service,
                vault_host=vault_host(bootstrap),
                interim=interim,
                release=release,
            )
        self._app = self.booting
        self.booting.start()
        return self

    def start_service(self, settings: Settings) -> WSGIApp:
        """Start this worker's Service with complete settings and return its WSGI app."""
        self.service = start_service(settings, Role(settings.web_role))
        app: WSGIApp = self.service.app()
        return app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        assert self._app is not None, "WebProcess.start was not called"
        return self._app(environ, start_response)

    def shutdown(self) -> None:
        """Stop booting, finish the current batch, keep the rest pending, then hand the
        scheduler lock to the next process. Safe to call twice."""
        if self.booting is not None:
            self.booting.stop()
        if self.service is not None:
            self.service.stop()


def build_app(settings: Settings | None = None) -> WebProcess:
    """This worker's app, serving at once (see ``WebProcess.start``)."""
    return WebProcess().start(settings)


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


def start_service(settings: Settings, role: Role) -> Service:
    """Build and start a Service in ``role`` with complete settings (web or worker)."""
    init_sentry(settings)
    crons = CronReporter(
        settings.window, settings.poll_interval, sentry_capture(bool(settings.sentry_dsn))
    )
    service = Service(settings, crons=crons, role=role)
    service.start()
    # Counts only: feed URLs may carry API keys in their query strings.
    log.info(
        "service started: role=%s name=%s env=%s model=%s@%s feeds=%d tickers=%d window=%s",
        role,
        service.name,
        settings.env,
        settings.finbert_model,
        settings.finbert_model_sha,
        len(settings.feed_specs),
        len(settings.watchlist),
        settings.window.name,
    )
    return service
