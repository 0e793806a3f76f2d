"""gzip for clients that ask for it (``Accept-Encoding: gzip``), as a Bottle plugin.

A 30-day 15m history is ~113 kB of JSON and ~13 kB gzipped; Heroku's router passes
bodies through as they are, so the app compresses. Only 200 JSON bodies of a packet
or more are compressed. A compressed body carries its ETag weakened (``W/"…"``, as
nginx does), so ``If-None-Match`` still matches it (``etag_matches`` compares weakly)
and the 304s keep working. Bodies with an ETag are compressed once and kept (the
history and latest caches hand out the same bodies again and again).
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import bottle

from scorer.api.http import BODY_BYTES

MIN_BYTES = 1_400  # below one packet, compression saves nothing
# zlib's default. Measured here on 113 kB of history: level 6 → 12.7 kB in 2.7 ms,
# 1 → 16.3 kB in 0.8 ms, 9 → 12.0 kB in 4.8 ms; an ETagged body is compressed once.
LEVEL = 6


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (RFC 9110: ``gzip``, ``x-gzip`` or
    ``*`` with a q-value above 0; ``gzip;q=0`` refuses it)."""
    allowed: dict[str, bool] = {}
    for item in accept_encoding.lower().split(","):
        name, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        allowed[name.strip()] = q > 0
    for name in ("gzip", "x-gzip"):
        if name in allowed:
            return allowed[name]
    return allowed.get("*", False)


class _Kept:
    """Compressed bodies by ETag, bounded in bytes, oldest out first."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes, self._bytes = max_bytes, 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str, data: bytes) -> bytes:
        with self._lock:
            kept = self._items.get(etag)
            if kept is not None:
                self._items.move_to_end(etag)
                return kept
        packed = gzip.compress(data, compresslevel=LEVEL, mtime=0)
        with self._lock:
            if etag not in self._items and len(packed) <= self._max_bytes:
                self._items[etag] = packed
                self._bytes += len(packed)
                while self._bytes > self._max_bytes:
                    self._bytes -= len(self._items.popitem(last=False)[1])
        return packed


def plugin(max_bytes: int = 4 << 20) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The Bottle plugin; ``max_bytes`` bounds the compressed bodies it keeps."""
    kept = _Kept(max_bytes)

    def apply(callback: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            body = callback(*args, **kwargs)
            response = bottle.response
            if not isinstance(body, str | bytes) or response.status_code not in (200, 304):
                return body
            if not response.content_type.startswith("application/json"):
                return body
            response.add_header("Vary", "Accept-Encoding")
            # A long header is not worth a 431 here: its first 256 characters suffice.
            wanted = bottle.request.environ.get("HTTP_ACCEPT_ENCODING", "")[:256]
            if not accepts_gzip(wanted):
                return body
            if response.status_code == 304:  # the ETag of the 200 it stands for
                etag = response.get_header("ETag")
                if etag and bottle.request.environ.get(BODY_BYTES, 0) >= MIN_BYTES:
                    response.set_header("ETag", etag if etag.startswith("W/") else f"W/{etag}")
                return body
            data = body.encode() if isinstance(body, str) else body
            if len(data) < MIN_BYTES:
                return body
            etag = response.get_header("ETag")
            if etag:
                packed = kept.get(etag, data)
                response.set_header("ETag", etag if etag.startswith("W/") else f"W/{etag}")
            else:
                packed = gzip.compress(data, compresslevel=LEVEL, mtime=0)
            response.set_header("Content-Encoding", "gzip")
            return packed

        return wrapper

    return apply
