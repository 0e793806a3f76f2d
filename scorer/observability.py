"""Process set-up shared by the web server and the CLI: logging and Sentry."""

from __future__ import annotations

import logging

from scorer import __version__
from scorer.config import Settings


def configure_logging(level: int = logging.INFO) -> None:
    """One line per record on stderr, which Heroku's router collects."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )


def init_sentry(settings: Settings) -> None:
    """Report errors to Sentry when a DSN is configured; never send request PII."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.env,
        release=f"reasonator@{__version__}",
        send_default_pii=False,  # keeps Authorization headers and cookies out of events
    )


def report_to_sentry(settings: Settings, message: str) -> None:
    """A warning for the operator as a Sentry message, when Sentry is configured."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    sentry_sdk.capture_message(message, level="warning")
