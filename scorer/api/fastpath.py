"""Answers kept whole, replayed before Bottle routes the request.

Under gunicorn's gthread worker one process serves every request under one GIL, so
what Bottle does per request (binding the request and response, routing, the errors,
compress, auth and parameters plugins, building the header list) is a third of what a
kept ``latest`` answer costs (py-spy, bench/README.md). A route that keeps whole
answers registers a ``FastPath`` for its path: the app offers it each GET first, and
the route's cache answers with the status, headers and body Bottle sent for the same
request before (captured here, so the bytes are Bottle's own), or None, and Bottle
answers as always (and what it sends may be kept for the next time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import bottle

Headers = list[tuple[str, str]]
Answer = tuple[str, Headers, bytes]


class FastPath(Protocol):
    def answer(self, environ: dict[str, Any]) -> Answer | None:
        """The kept answer to this request, or None: Bottle answers it."""

    def offer(self, environ: dict[str, Any], answer: Answer) -> None:
        """What Bottle answered to this request, to keep if the route marked it so."""


class App(bottle.Bottle):  # type: ignore[misc]  # bottle ships no types
    """A Bottle app whose registered ``fast_paths`` (by PATH_INFO) see each GET first."""

    def __init__(self) -> None:
        super().__init__()
        self.fast_paths: dict[str, FastPath] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        fast = self.fast_paths.get(environ.get("PATH_INFO", ""))
        if fast is None or environ.get("REQUEST_METHOD") != "GET":
            answered: Iterable[bytes] = super().__call__(environ, start_response)
            return answered
        kept = fast.answer(environ)
        if kept is not None:
            status, headers, body = kept
            start_response(status, list(headers))
            return [body]
        sent: list[tuple[str, Headers]] = []

        def capture(status: str, headers: Headers, exc_info: Any = None) -> Any:
            sent.append((status, list(headers)))
            return start_response(status, headers, exc_info)

        out: Iterable[bytes] = super().__call__(environ, capture)
        if sent and isinstance(out, list) and all(isinstance(part, bytes) for part in out):
            fast.offer(environ, (sent[-1][0], sent[-1][1], b"".join(out)))
        return out
