"""One stub HTTP server on 127.0.0.1 for every test that needs a feed, a vault or
any other remote: routes map a path (query ignored) to a function answering it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

FIXTURES = Path(__file__).parents[1] / "fixtures"

Route = Callable[[BaseHTTPRequestHandler], None]


class StubServer(ThreadingHTTPServer):
    """Routes map a path (query ignored) to a function answering the request."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubHandler)
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path with query, headers)
        self.release = threading.Event()  # set at teardown, so slow routes end at once

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def serve_file(self, path: str, name: str, content_type: str = "application/rss+xml") -> str:
        """Serve the feed fixture ``name`` at ``path``; returns its URL."""
        body = (FIXTURES / "feeds" / name).read_bytes()
        self.routes[path] = reply(body, headers={"Content-Type": content_type})
        return self.url(path)

    @property
    def hits(self) -> list[str]:
        """Paths requested so far, in order."""
        return [urlsplit(path).path for path, _ in self.seen]


class StubHandler(BaseHTTPRequestHandler):
    server: StubServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        route = self.server.routes.get(urlsplit(self.path).path)
        if route is None:
            self.send_error(404)
        else:
            route(self)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


def reply(
    body: bytes, status: int = 200, headers: dict[str, str] | None = None, length: bool = True
) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if length:  # without Content-Length, HTTP/1.0 ends the body by closing
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return route


@contextmanager
def running() -> Iterator[StubServer]:
    """A started server, shut down on exit (slow routes are released first)."""
    server = StubServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- misbehaving routes: what real servers do ------------------------------------------------


def slow(seconds: float, body: bytes) -> Route:
    """Answers after ``seconds`` (or at teardown)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.server.release.wait(timeout=seconds)  # type: ignore[attr-defined]
        reply(body)(handler)

    return route


def trickle(every: float, body: bytes = b"<rss>" + b" " * 10_000) -> Route:
    """Sends headers at once, then one byte every ``every`` seconds until teardown."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            if handler.server.release.wait(timeout=every):  # type: ignore[attr-defined]
                return

    return route


def hang() -> Route:
    """Accepts the request and never answers (until teardown)."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.server.release.wait(timeout=120)  # type: ignore[attr-defined]

    return route


def not_modified() -> Route:
    """304 when the client sends the ETag it was given, else the body with that ETag."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == '"v1"':
            reply(b"", status=304, headers={"ETag": '"v1"'})(handler)
        else:
            body = (FIXTURES / "feeds" / "watchlist_news.xml").read_bytes()
            reply(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})(handler)

    return route


def redirect_loop(path: str) -> Route:
    """Redirects to itself, forever."""
    return reply(b"", status=302, headers={"Location": path})


HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Hi</body></html>"
