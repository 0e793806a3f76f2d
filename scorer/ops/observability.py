"""Process set-up shared by the web server and the CLI: logging and Sentry.

Sentry leaks nothing: every event, transaction and breadcrumb is scrubbed of the
service's secrets by value (wherever they appear: messages, frame variables, request
data, breadcrumbs, nested or truncated) and of any value under a sensitive key.
Frame local variables stay on: they are what makes an error report useful, and the
scrubber covers them (tests/test_observability.py raises real errors with the token
in locals and checks the recorded envelopes).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote, urlsplit

from scorer import __version__
from scorer.config.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk.types import Breadcrumb, Event, Hint

FILTERED = "[Filtered]"
# Values under keys like these are dropped whatever they hold (nested too).
SENSITIVE_KEY = re.compile(
    r"authorization|token|secret|passw|dsn|cookie|api[_-]?key|credential|"
    r"database_url|access[_-]?key|private[_-]?key|client[_-]?secret",
    re.IGNORECASE,
)
# A secret's first characters: Sentry truncates long strings, which can cut a secret;
# its prefix and whatever secret-like characters follow are scrubbed too.
PREFIX = 8


def configure_logging(level: int = logging.INFO) -> None:
    """One line per record on stderr, which Heroku's router collects."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # Library chatter stays out of the service's log ("Context impl SQLiteImpl.", the
    # scheduler's "Adding job tentatively", …); their warnings and errors still get through.
    for noisy in ("alembic", "urllib3", "filelock", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The hub client warns at each of its own retries; the model loader logs each failed
    # attempt once, with the reason health shows.
    logging.getLogger("huggingface_hub.utils._http").setLevel(logging.ERROR)


def release(settings: Settings) -> str:
    """``reasonator@1.0.0`` plus the deployed commit when Heroku tells it."""
    commit = settings.heroku_slug_commit or settings.source_version
    return f"reasonator@{__version__}" + (f"+{commit[:12]}" if commit else "")


def secret_values(settings: Settings) -> list[str]:
    """Every secret the process knows, to scrub by value."""
    values = [
        settings.service_token,
        settings.service_token_next,
        settings.infisical_client_secret,
        settings.cf_access_client_secret,
        settings.sentry_dsn and urlsplit(settings.sentry_dsn).username,
    ]
    password = urlsplit(settings.database_url).password
    if password:
        values += [password, unquote(password)]
    return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


class Scrubber:
    """Replace secrets by value and values under sensitive keys, in place."""

    def __init__(self, secrets: Iterable[str]) -> None:
        patterns = []
        for value in secrets:
            patterns.append(re.escape(value))
            if len(value) > PREFIX:
                patterns.append(re.escape(value[:PREFIX]) + r"[A-Za-z0-9_\-+/=%]*")
        self._pattern = re.compile("|".join(patterns)) if patterns else None

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(FILTERED, value)

    def walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                k: FILTERED
                if isinstance(k, str) and SENSITIVE_KEY.search(k) and v not in (None, "")
                else self.walk(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.walk(v) for v in value]
        if isinstance(value, bytes):
            return self.text(value.decode("latin-1"))
        return value

    def event(self, event: Event, hint: Hint | None = None) -> Event:
        """before_send / before_send_transaction: errors, transactions and check-ins
        (a check-in holds no secret and keeps its keys: it passes through unchanged
        in shape, so Crons keep working)."""
        return cast("Event", self.walk(event))

    def breadcrumb(self, crumb: Breadcrumb, hint: Hint | None = None) -> Breadcrumb:
        return cast("Breadcrumb", self.walk(crumb))


def init_sentry(settings: Settings) -> None:
    """Report errors to Sentry when a DSN is configured; never send a secret."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    scrubber = Scrubber(secret_values(settings))
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.env,
        release=release(settings),
        # What send_default_pii=False collected (deprecated in sentry-sdk 2.75): no user
        # identity, no request bodies, no database query parameters; sensitive headers,
        # cookies and query parameters filtered by Sentry's denylist before ours runs.
        data_collection={
            "user_info": False,
            "http_bodies": [],
            "database_query_data": False,
            "queues": False,
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
        },
        before_send=scrubber.event,
        before_send_transaction=scrubber.event,
        before_breadcrumb=scrubber.breadcrumb,
    )


def report_to_sentry(settings: Settings, message: str) -> None:
    """A warning for the operator as a Sentry message, when Sentry is configured."""
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    sentry_sdk.capture_message(message, level="warning")
