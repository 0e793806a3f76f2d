"""gunicorn settings for the web dyno
(Procfile: ``gunicorn -c python:scorer.process.gunicorn_conf``)."""

from typing import Any

from scorer.config.settings import Purpose, load_settings

# Fails fast on a malformed variable, before binding. No token check: with the runbook's
# config the token is in the vault, which each worker reads after binding (boot.py).
_settings = load_settings(Purpose.GUNICORN_MASTER)

bind = f"0.0.0.0:{_settings.port}"
# Each worker holds its own model (~370 MB peak): on an Eco dyno (512 MB) that means one
# (see Settings: a WEB_CONCURRENCY set by Heroku's buildpack is not the operator's).
workers = _settings.web_concurrency
worker_class = "gthread"
threads = 8
# Heroku sends SIGTERM and SIGKILL 30 s later: finish requests and the current batch first.
graceful_timeout = 20
timeout = 30
keepalive = 5
accesslog = None  # the Heroku router logs every request already
# gunicorn answers these itself, in HTML, before the app sees the request (README,
# "Errors"): a request line past 4094 bytes is its 414, a header past 8190 bytes its 431.
# Below them the app answers in JSON (query string > 2048 bytes: 414; an Authorization or
# If-None-Match header > 1024 bytes: 431).
limit_request_line = 4094
limit_request_field_size = 8190
limit_request_fields = 100


def worker_exit(server: Any, worker: Any) -> None:
    # The worker's app is its WebProcess (scorer/process/web.py): what it holds is
    # reached through it. A worker that failed to load its app has none.
    shutdown = getattr(getattr(worker, "wsgi", None), "shutdown", None)
    if callable(shutdown):
        shutdown()
