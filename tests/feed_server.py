"""One stub HTTP server on 127.0.0.1 for every test that needs a feed, a vault or
any other remote: routes map a path (query ignored) to a function answering it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

FIXTURES = Path(__file__).parent / "fixtures"

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
