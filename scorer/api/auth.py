"""Bearer auth for the read API, as one Bottle plugin: every route needs one of the
service's tokens except those in ``PUBLIC_ROUTES``, the one list of what is public.
``scorer/process/boot.py``'s Booting app reads the same list."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import bottle

from scorer.api import console
from scorer.api.http import header
from scorer.config.settings import Settings

# Route rules (Bottle's paths): literal, as Booting compares them with PATH_INFO. The
# console's page and assets hold no data: the page asks for the token and sends it.
PUBLIC_ROUTES = frozenset({"/v1/health", "/v1/openapi.json", *console.PATHS})


class BearerAuth:
    """The Bottle plugin (API 2): wraps every route not in PUBLIC_ROUTES so it answers
    401 unless the request carries one of the service's bearer tokens (the current one,
    or the next during a rotation), before the route runs: before any parameter is read
    and before any ETag is compared."""

    name = "bearer_auth"
    api = 2

    def __init__(self, settings: Settings) -> None:
        self._tokens = tuple(token.encode() for token in settings.service_tokens)

    def apply(self, callback: Callable[..., Any], route: bottle.Route) -> Callable[..., Any]:
        if route.rule in PUBLIC_ROUTES:
            return callback

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.authorize()
            return callback(*args, **kwargs)

        return wrapper

    def authorize(self) -> None:
        """Raise 401 unless the request carries a valid bearer token. The header is read
        by `header`, safe for any bytes: a non-UTF-8 byte is a 401, never a 500."""
        scheme, _, token = header("Authorization").partition(" ")
        given = token.strip().encode()
        # compare_digest: the time taken must not tell how much of a token matched. Every
        # token is compared, so the time does not tell which one matched either.
        matched = False
        for expected in self._tokens:
            matched |= hmac.compare_digest(given, expected)
        if scheme.lower() != "bearer" or not matched:
            raise bottle.HTTPError(
                401,
                "a valid bearer token is required",
                **{"WWW-Authenticate": 'Bearer realm="reasonator"'},
            )
