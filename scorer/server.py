"""The web process: builds the service once per gunicorn worker, then loads the
model and starts the scheduler in the background so the port is served at once."""

from __future__ import annotations

import gc
import logging
import threading

import bottle
from apscheduler.schedulers.background import BackgroundScheduler

from scorer.config import Settings
from scorer.crons import CronReporter, sentry_capture
from scorer.leader import SchedulerLock, make_lock
from scorer.loader import ModelLoader
from scorer.observability import configure_logging, init_sentry
from scorer.schedule import make_scheduler
from scorer.service import Service

log = logging.getLogger(__name__)

_service: Service | None = None
_scheduler: BackgroundScheduler | None = None
_lock: SchedulerLock | None = None


def build_app() -> bottle.Bottle:
    """Called on import of ``scorer.wsgi`` inside the worker, after gunicorn forked
    (the scheduler lock must belong to this process, not be shared with the master)."""
    global _service, _lock
    configure_logging()
    settings = Settings.from_env()
    init_sentry(settings)
    crons = CronReporter(
        settings.window, settings.poll_interval, sentry_capture(bool(settings.sentry_dsn))
    )
    _service = Service(settings, crons=crons)
    _lock = make_lock(_service.engine)
    _service.loader.start()
    threading.Thread(target=_freeze_heap, args=(_service.loader,), daemon=True).start()
    # The scheduler needs the market calendar (about a second to build): start it in
    # the background too, so the worker answers health at once.
    threading.Thread(target=_start_scheduler, args=(_service, _lock), daemon=True).start()
    # Counts only: feed URLs may carry API keys in their query strings.
    log.info(
        "service started: env=%s model=%s@%s feeds=%d tickers=%d window=%s",
        settings.env,
        settings.finbert_model,
        settings.finbert_model_sha,
        len(settings.feeds),
        len(settings.watchlist),
        settings.window.name,
    )
    lock = _lock
    return _service.app(role=lambda: "scheduler" if lock.held else "reader")


def _freeze_heap(loader: ModelLoader) -> None:
    """Once the model is loaded, move every object then alive out of the collector's
    sight (``gc.freeze``). Otherwise each automatic full collection scans them all:
    with transformers loaded, a 100-250 ms pause for every request in flight
    (bench/latest.py: p99 137 ms unfrozen, 23 ms frozen)."""
    loader.wait()
    gc.collect()  # freeze what is alive, not garbage awaiting collection
    gc.freeze()


def _start_scheduler(service: Service, lock: SchedulerLock) -> None:
    global _scheduler
    settings = service.settings
    # Take the lock now if it is free, so health's role is true from the start; ticks
    # inside the window ask again, which is how a reader takes over from a holder.
    lock.try_acquire()
    scheduler = make_scheduler(
        service.run_cycle,
        interval=settings.poll_interval,
        window=settings.window,
        leader=lock.try_acquire,
    )
    scheduler.start()
    _scheduler = scheduler


def shutdown() -> None:
    """gunicorn's worker_exit hook: finish the current batch, keep the rest pending,
    then hand the scheduler lock to the next process."""
    if _scheduler is not None:
        _scheduler.shutdown(wait=False)
    if _service is not None:
        _service.shutdown()
    if _lock is not None:
        _lock.release()
