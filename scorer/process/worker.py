"""``python -m scorer worker``: the Procfile's ``worker:`` process, which scores and runs
the scheduler while web dynos (``WEB_ROLE=read``) only serve.

It reads its settings like a web worker (the vault, with backoff while it cannot be
read), then runs a ``worker`` Service until SIGTERM or SIGINT: the scheduler (the
lock lets one worker per deployment run the ingest cycle and retention), a scoring
loop sharing the queue with the other workers through claims, and a heartbeat that
the web dynos' health reads. On SIGTERM it finishes its batch, removes its heartbeat
and releases the lock; an uncommitted batch stays pending for the others.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from scorer.config.settings import ConfigError, Purpose, Settings, VaultUnreadable, load_settings
from scorer.ops.observability import configure_logging
from scorer.process.boot import FIRST_BACKOFF, MAX_BACKOFF
from scorer.process.service import Role, Service
from scorer.process.web import start_service

log = logging.getLogger(__name__)


def run_worker() -> int:
    """Run until a signal; 0 after a clean stop."""
    configure_logging()
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping after the current batch", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    # A malformed variable stops the worker here (exit 2, one line, in cli.main).
    load_settings(Purpose.BOOTSTRAP)
    settings = _settings(stop)
    if settings is None:
        return 0
    service: Service = start_service(settings, Role.WORKER)
    while not stop.wait(1.0):
        pass
    service.stop()
    log.info("worker stopped")
    return 0


def _settings(stop: threading.Event) -> Settings | None:
    """The worker's settings, retried with backoff while the vault cannot be read or
    lacks a setting (as a web worker does); None if stopped meanwhile."""
    backoff, attempts = FIRST_BACKOFF, 0
    while not stop.is_set():
        attempts += 1
        try:
            return load_settings(Purpose.WORKER)
        except VaultUnreadable as exc:
            reason = exc.reason
        except ConfigError as exc:
            reason = f"configuration error: {exc}"
        log.error("boot attempt %d failed, retrying in %.0fs: %s", attempts, backoff, reason)
        stop.wait(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF)
    return None
