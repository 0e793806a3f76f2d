"""Waiting in tests for something another thread or process does, with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``check`` every 50 ms until it holds; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
