"""A headless Chromium (Debian's ``chromium`` and ``chromedriver``, driven by Selenium)
and a WSGI app served on 127.0.0.1 in a thread, for the console's browser tests."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

DESKTOP, PHONE = (1280, 800), (390, 844)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser keeps connections open: never wait on them


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, _ThreadingServer, _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def browser_paths() -> tuple[str, str]:
    """The chromium and chromedriver on PATH. Missing: a failure in CI (``CI`` set: .ci/run
    installs them), a skip with the reason elsewhere."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    reason = (
        "the console's browser tests need Debian's chromium and chromedriver on PATH "
        "(apt-get install chromium chromium-driver; .ci/run installs them)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def chromium(size: tuple[int, int] = DESKTOP) -> Iterator[Any]:
    """A headless Chromium of this window size, its console messages kept (get_log)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",  # no calls home: only 127.0.0.1
        "--disable-component-update",
        "--disable-sync",
        "--metrics-recording-only",
        f"--window-size={size[0]},{size[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_window_size(*size)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: Any) -> list[dict[str, Any]]:
    """What the page logged at SEVERE (errors, failed loads, CSP violations)."""
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshots_dir(tmp_path: Path) -> Path:
    """Where the tests save their screenshots: ``CONSOLE_SCREENSHOTS`` or the test's tmp."""
    folder = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
