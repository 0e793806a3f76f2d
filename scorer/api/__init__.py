"""The read API (Bottle): public health, OpenAPI document and console page, the rest behind a bearer
token (scorer/api/auth.py: the plugin and the one list of public routes).

One module per group of routes, each with an ``install(app, ...)``; this module
only assembles them. To add an endpoint, add a module here and install it below; it
needs the bearer token unless its path is in ``auth.PUBLIC_ROUTES``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import bottle
from sqlalchemy import Engine

from scorer.api import (
    articles,
    compress,
    console,
    drilldown,
    feeds,
    health,
    openapi,
    scores,
    tickers,
)
from scorer.api.auth import PUBLIC_ROUTES, BearerAuth
from scorer.api.fastpath import App
from scorer.api.http import install_errors
from scorer.api.params import Parameters
from scorer.api.stamp import StampReader
from scorer.api.workers import WorkerBoard
from scorer.config.settings import Settings
from scorer.scoring.model import ModelLoader
from scorer.storage.db import make_session_factory
from scorer.storage.outage import OutageWatch

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    engine: Engine,
    loader: ModelLoader | WorkerBoard,
    role: Callable[[], str] = lambda: "scheduler",
    clock: Callable[[], float] = time.monotonic,
    outages: OutageWatch | None = None,
) -> bottle.Bottle:
    """Build the WSGI app. Nothing here touches the network or loads a model.
    ``outages``: the process's view of the database (the Service shares its own with
    the jobs), so an outage is logged once whoever meets it."""
    app = App()  # a Bottle that replays kept answers first (scorer/api/fastpath.py)
    app.config["json.enable"] = False  # every route serialises itself (ETags need the bytes)
    sessions = make_session_factory(engine)
    if outages is None:
        outages = OutageWatch(clock=clock)
    health.install(
        app, settings, sessions=sessions, loader=loader, role=role, clock=clock, outages=outages
    )
    # One stamp reader for the routes whose caches follow max(score_events.id).
    stamps = StampReader(engine)
    scores.install(
        app, engine, settings.watchlist, stamps, settings.service_tokens, outages.succeeded
    )
    feeds.install(app, settings, sessions)
    articles.install(app, settings, engine, stamps)
    drilldown.install(app, settings, engine)
    tickers.install(app, settings, engine)
    openapi.install(app)
    console.install(app)
    install_errors(app, outages, no_database=PUBLIC_ROUTES)
    # A plugin installed later wraps the route more closely: compress inside the error
    # handling, then auth, the first thing every protected route does, and the
    # parameters innermost: no parameter is read before the token is checked.
    app.install(compress.plugin())
    app.install(BearerAuth(settings))
    app.install(Parameters())
    return app
