"""A web worker whose settings are not known yet: it serves at once, reads the vault in
the background with backoff, then hands every request to the real app.

Why: with the runbook's config the bearer token, the Sentry DSN and the model revision
are in the vault. The worker must bind ``$PORT`` within 60 s whether the vault answers
or not, tell health why it is not ready, and never serve the read API without a token.
Until then the public routes (``scorer.api.auth.PUBLIC_ROUTES``) answer 503, health with
the reason, and every other path 401.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from scorer.api.auth import PUBLIC_ROUTES
from scorer.api.http import RETRY_AFTER
from scorer.config.settings import ConfigError, Settings, VaultUnreadable

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HEALTH_PATH = "/v1/health"
# Vault retries: soon at first (a dyno boot races the vault's own restarts), then at most
# once a minute, so a long outage costs the vault one login a minute per worker.
FIRST_BACKOFF = 2.0
MAX_BACKOFF = 60.0


class Booting:
    """The worker's WSGI app: a placeholder until ``run`` has built the real one."""

    def __init__(
        self,
        load: Callable[[], Settings],
        start: Callable[[Settings], WSGIApp],
        *,
        first_backoff: float | None = None,
        max_backoff: float | None = None,
    ) -> None:
        self._load = load  # load_settings(Purpose.WEB): reads the vault
        self._start = start
        self._first_backoff = FIRST_BACKOFF if first_backoff is None else first_backoff
        self._max_backoff = MAX_BACKOFF if max_backoff is None else max_backoff
        self._stop = threading.Event()
        self._app: WSGIApp | None = None
        self.reason = "reading settings from the vault"
        self.attempts = 0

    @property
    def ready(self) -> bool:
        return self._app is not None

    def start(self) -> None:
        """Boot in a daemon thread; returns at once."""
        threading.Thread(target=self.run, name="boot", daemon=True).start()

    def run(self) -> None:
        """Read the vault and build the settings until both work, then start the app."""
        backoff = self._first_backoff
        while not self._stop.is_set():
            self.attempts += 1
            try:
                settings = self._load()
            except VaultUnreadable as exc:  # an outage: down, unreachable, refused
                self.reason = exc.reason
            except ConfigError as exc:  # e.g. the vault holds no RACK_SERVICE_TOKEN
                self.reason = f"configuration error: {exc}"
            else:
                self._app = self._start(settings)
                return
            log.error(
                "boot attempt %d failed, retrying in %.0fs: %s", self.attempts, backoff, self.reason
            )
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)

    def stop(self) -> None:
        self._stop.set()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        app = self._app
        if app is not None:
            return app(environ, start_response)
        path = environ.get("PATH_INFO")
        if path == HEALTH_PATH:
            body = {"status": "warming_up", "model_loaded": False, "reason": self.reason}
            return _json(
                start_response, "503 Service Unavailable", body, ("Cache-Control", "no-store")
            )
        if path in PUBLIC_ROUTES:  # needs no token, but only the real app can answer it
            body = {"error": "unavailable", "message": "the service is starting; retry later"}
            return _json(
                start_response, "503 Service Unavailable", body, ("Retry-After", str(RETRY_AFTER))
            )
        # No token is known yet, so no other route can be authorized.
        body = {"error": "unauthorized", "message": "a valid bearer token is required"}
        return _json(
            start_response,
            "401 Unauthorized",
            body,
            ("WWW-Authenticate", 'Bearer realm="reasonator"'),
        )


def _json(
    start_response: Callable[..., Any], status: str, body: dict[str, Any], *headers: tuple[str, str]
) -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]
