"""The web process as gunicorn runs it: built once per worker, serving at once,
stopped by the worker_exit hook."""

from __future__ import annotations

from sqlalchemy import Engine
from webtest import TestApp

from scorer.config.settings import Settings
from scorer.market.lock import make_lock
from scorer.process import web
from tests.helpers.waiting import eventually


def test_the_web_process_serves_at_once_and_hands_over_on_shutdown(
    settings: Settings, engine: Engine
) -> None:
    process = web.build_app(settings)
    app = TestApp(process)
    try:
        # The port is served before the model has loaded: health answers at once.
        assert app.get("/v1/health", expect_errors=True).status_int in (200, 503)
        eventually(
            lambda: app.get("/v1/health", expect_errors=True).status_int == 200, timeout=30.0
        )
        # The scheduler starts in the background and takes the deployment's lock.
        eventually(lambda: app.get("/v1/health").json["role"] == "scheduler", timeout=30.0)
        assert not make_lock(engine).try_acquire()
    finally:
        process.shutdown()
    successor = make_lock(engine)
    assert successor.try_acquire()  # the lock went with the shutdown
    successor.release()
    process.shutdown()  # a second SIGTERM's hook breaks nothing
