"""A web worker whose settings are not known yet: it serves at once, reads the vault in
the background with backoff, then hands every request to the real app.

Why: with the runbook's config the bearer token, the Sentry DSN and the model revision
are in the vault. The worker must bind ``$PORT`` within 60 s whether the vault answers
or not, tell health why it is not ready, and never serve the read API without a token.
Until then what the environment alone allows is served: health answers 503 with the
reason (naming the vault's host, never a credential), the OpenAPI document 200, the
operator's console (its page then shows the 503 and its reason), and the read API,
when ``RACK_SERVICE_TOKEN`` is set in the environment (which wins over the vault),
from the database through an interim app (``web.interim_app``); without a
token known yet every other path answers 401.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from scorer.api.console import PATHS as CONSOLE_PATHS
from scorer.api.http import etag_matches, etag_of
from scorer.config.settings import ConfigError, Settings, VaultUnreadable

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HEALTH_PATH = "/v1/health"
OPENAPI_PATH = "/v1/openapi.json"
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
        vault_host: str | None = None,
        interim: WSGIApp | None = None,
        release: Callable[[], None] = lambda: None,
        first_backoff: float | None = None,
        max_backoff: float | None = None,
    ) -> None:
        """``vault_host``: where the vault is (None: no vault configured); ``interim``:
        the read API over the environment's settings, served meanwhile (None: no token
        in the environment), and ``release`` frees it once the real app runs."""
        self._load = load  # load_settings(Purpose.WEB): reads the vault
        self._start = start
        self._vault = vault_host
        self._interim, self._release = interim, release
        self._first_backoff = FIRST_BACKOFF if first_backoff is None else first_backoff
        self._max_backoff = MAX_BACKOFF if max_backoff is None else max_backoff
        self._stop = threading.Event()
        self._app: WSGIApp | None = None
        self._openapi: bytes | None = None
        self._console: WSGIApp | None = None  # built on the first console request
        self.reason = (
            "checking the settings"
            if vault_host is None
            else f"reading settings from the vault at {vault_host}"
        )
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
            before = self.reason
            try:
                settings = self._load()
            except VaultUnreadable as exc:  # an outage: down, unreachable, refused
                self.reason = f"{exc.reason} (the vault at {self._vault})"
            except ConfigError as exc:  # e.g. the vault holds no RACK_SERVICE_TOKEN
                self.reason = f"configuration error: {exc}"
            else:
                self._app = self._start(settings)
                self._interim = None
                self._release()
                return
            # One ERROR line per change of reason; the retries of the same one are INFO.
            log.log(
                logging.ERROR if self.reason != before else logging.INFO,
                "boot attempt %d failed, retrying in %.0fs: %s",
                self.attempts,
                backoff,
                self.reason,
            )
            if self._stop.wait(backoff):
                return
            backoff = min(backoff * 2, self._max_backoff)

    def stop(self) -> None:
        self._stop.set()
        if self._interim is not None:  # stopped before the vault answered
            self._interim = None
            self._release()

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
        method = environ.get("REQUEST_METHOD", "GET")
        if path == OPENAPI_PATH and method in ("GET", "HEAD"):  # public, whatever the settings
            return self._send_openapi(environ, start_response, head=method == "HEAD")
        if path in CONSOLE_PATHS:  # public static files: the page shows health's 503
            if self._console is None:
                from scorer.api.console import app as console_app

                self._console = console_app()
            return self._console(environ, start_response)
        interim = self._interim
        if interim is not None:  # the environment's token: its own 401s, reads from the database
            return interim(environ, start_response)
        # No token is known yet, so no other route can be authorized.
        body = {"error": "unauthorized", "message": "a valid bearer token is required"}
        return _json(
            start_response,
            "401 Unauthorized",
            body,
            ("WWW-Authenticate", 'Bearer realm="reasonator"'),
        )

    def _send_openapi(
        self, environ: dict[str, Any], start_response: Callable[..., Any], *, head: bool
    ) -> Iterable[bytes]:
        if self._openapi is None:
            from scorer.api.http import dumps
            from scorer.api.openapi import document

            self._openapi = dumps(document()).encode()
        etag = etag_of(self._openapi.decode())
        headers = [("ETag", etag), ("Cache-Control", "private, no-cache")]
        if etag_matches(str(environ.get("HTTP_IF_NONE_MATCH", "")), etag):
            start_response("304 Not Modified", headers)
            return [b""]
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(self._openapi))),
                *headers,
            ],
        )
        return [b"" if head else self._openapi]


def _json(
    start_response: Callable[..., Any], status: str, body: dict[str, Any], *headers: tuple[str, str]
) -> list[bytes]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(data))), *headers],
    )
    return [data]
