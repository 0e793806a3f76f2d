"""What a failed command exits with and the one line it prints (docs/operations.md,
"Exit codes"): 2 when the fix is in the command line or the settings (a bad argument,
a malformed or refused setting, an artifact built from another model); 1 for an outage
(the database or the vault not answering: retry once it is back) and for anything
unexpected, whose traceback goes to Sentry and, with ``--debug``, to stderr. Lines name
hosts, never passwords.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from sqlalchemy.exc import SQLAlchemyError

from scorer.config.settings import (
    ConfigError,
    Purpose,
    Settings,
    VaultUnreadable,
    load_settings,
)
from scorer.process.cli_args import UsageError

log = logging.getLogger(__name__)

USAGE, FAILURE = 2, 1


class Outage(Exception):
    """Something a command needs did not answer (the model hub, say): exit 1."""


def failure(exc: Exception, settings: Settings | None, prog: str) -> tuple[int, str, bool]:
    """(exit code, the line for stderr, whether it was unexpected) for ``exc`` raised by
    the command ``prog`` (``python -m scorer rescore``)."""
    from scorer.scoring.model import ArtifactMismatch
    from scorer.storage.db import DatabaseUnavailable
    from scorer.storage.demo import DemoRefused, NoSession
    from scorer.storage.outage import Outage as Outage_
    from scorer.storage.outage import classify

    if isinstance(exc, UsageError | NoSession):
        return USAGE, f"error: {prog}: {exc} (see {prog} --help)", False
    if isinstance(exc, DemoRefused):
        return USAGE, f"error: {prog} refused: {exc}", False
    if isinstance(exc, ArtifactMismatch):
        return USAGE, f"configuration error: {exc}", False
    if isinstance(exc, VaultUnreadable) and not exc.reachable:
        return FAILURE, f"outage: {_with_vault_host(exc.reason)}; retry once it is back", False
    if isinstance(exc, ConfigError):  # a refused vault login included: its credentials
        return USAGE, f"configuration error: {exc}", False
    if isinstance(exc, DatabaseUnavailable | Outage):
        return FAILURE, f"outage: {exc}; retry once it is back", False
    if isinstance(exc, SQLAlchemyError) and (kind := classify(exc)) is not None:
        what = "lost its schema" if kind is Outage_.NO_SCHEMA else "stopped answering"
        return FAILURE, f"outage: the database {what}: {type(exc).__name__}", False
    first = _scrubbed((str(exc).strip().splitlines() or [""])[0][:200], settings)
    return (
        FAILURE,
        f"internal error: {type(exc).__name__}: {first} (a bug: the traceback went to "
        "Sentry when SENTRY_DSN is set; --debug prints it)",
        True,
    )


def report_unexpected(exc: Exception, settings: Settings | None) -> None:
    """The traceback: to Sentry when configured, to the log at debug level (shown with
    ``--debug``)."""
    log.debug("unexpected failure", exc_info=exc)
    if settings is not None and settings.sentry_dsn:
        import sentry_sdk

        sentry_sdk.capture_exception(exc)
        sentry_sdk.flush(timeout=2)


def _scrubbed(text: str, settings: Settings | None) -> str:
    """``text`` without any secret the process knows (an unexpected message is free text)."""
    if settings is None:
        return text
    from scorer.ops.observability import secret_values

    for secret in secret_values(settings):  # the database password included
        text = text.replace(secret, "***")
    return text


def _with_vault_host(reason: str) -> str:
    """The reason naming the vault's host, when it does not already."""
    try:
        url = load_settings(Purpose.BOOTSTRAP).infisical_api_url
    except ConfigError:
        return reason
    host = urlsplit(url).hostname or url
    return reason if host in reason else f"{reason} (the vault at {host})"
